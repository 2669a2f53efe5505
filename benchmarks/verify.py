"""Benchmark: the serial check on emulated boards, one and several at once, and what it costs on real UARTs.

    python benchmarks/verify.py --artifacts artifacts [--data DIR] [--devices 1,2,3,4] [--limit 2000]

Works on a scratch copy of the artifacts folder (your artifacts/verify is left
alone): builds the native firmware, then, in one run and one after another:

- a sweep over the number of emulated boards (`verify --devices N`) on the
  first --limit images, with the CTX input encoding and, on one board, with
  RLE only (the encoding older firmware gets);
- all 10,000 test images with the defaults (`DEFAULT_EMULATORS` boards, CTX),
  timed from the call to the verdict (emulator start and input coding
  included), and the same on one board for the speed-up side by side.

Every run must have 0 bytes differing from the TFLM reference. Prints Markdown
tables; results go to benchmarks/results/verify.json. The UART figures are wire
time from the bytes measured per image (8N1: 10 bits per byte, one request at a
time as on a real board) at each baud rate the STM32F405 makes exactly, plus
the compute time the tick count implies at 168 MHz if one tick were one cycle.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lenet_mcu.artifacts import MANIFEST, METRICS, REFERENCES, RUNTIMES, TFLITE_MODEL, verify_dir
from lenet_mcu.atomic import write_json
from lenet_mcu.host.verify import DEFAULT_EMULATORS, run_verify
from lenet_mcu.pipeline import ensure_firmware

PIPELINE_FILES = (TFLITE_MODEL, REFERENCES, MANIFEST, METRICS)
CORE_HZ = 168_000_000
#: 115200 (the default) and the fastest rates the STM32F405's USART1 makes exactly from its 84 MHz clock.
UART_BAUDS = (115200, 1_000_000, 2_000_000, 3_000_000, 5_250_000)


def run_once(art: Path, elf: Path, data_dir, limit, devices: int, ctx: bool = True) -> dict:
    shutil.rmtree(verify_dir(art), ignore_errors=True)
    t0 = time.monotonic()
    rep = run_verify(
        art,
        data_dir=data_dir,
        limit=limit,
        devices=devices,
        elf=elf,
        ctx=ctx,
        progress=False,
        reports=False,
        log=lambda m: None,
    )
    wall = time.monotonic() - t0
    th, wire, ticks = rep["throughput"], rep["throughput"]["wire"], rep["ticks"]
    per_image_bytes = wire["bytes_to_device_per_image"] + wire["bytes_from_device_per_image"]
    compute = ticks["median"] / CORE_HZ
    return {
        "devices": devices,
        "encoding": "best offered (CTX)" if ctx else "RLE",
        "images": rep["images"],
        "images_requested": rep["images_requested"],
        "differing_from_tflm": rep["bitexact"]["images_differing"],
        "wall_seconds": wall,
        "stream_seconds": th["session_seconds"],
        "images_per_second": th["images_per_second"],
        "per_device_images": [d["images"] for d in rep["devices"]],
        "bytes_to_device_per_image": wire["bytes_to_device_per_image"],
        "bytes_from_device_per_image": wire["bytes_from_device_per_image"],
        "ticks_median": ticks["median"],
        "uart_seconds_for_10000": {
            str(b): {
                "wire": per_image_bytes * 10 / b * 10000,
                "with_compute": (per_image_bytes * 10 / b + compute) * 10000,
            }
            for b in UART_BAUDS
        },
        "link": {k: rep["link"][k] for k in ("retransmits", "timeouts", "bad_frames_received")},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--data", default=None, help="MNIST folder [default: $LENET_MCU_MNIST_DIR]")
    ap.add_argument("--runtime", default="native", choices=RUNTIMES)
    ap.add_argument("--devices", default="1,2,3,4", help="numbers of emulated boards to compare on --limit images")
    ap.add_argument("--limit", type=int, default=2000, help="images per sweep run")
    ap.add_argument("--no-full", action="store_true", help="skip the two runs over all 10,000 images")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = ap.parse_args(argv)

    counts = [int(n) for n in args.devices.split(",") if n]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        art = Path(tmp) / "artifacts"
        art.mkdir()
        for name in PIPELINE_FILES:
            if (args.artifacts / name).exists():
                shutil.copy2(args.artifacts / name, art / name)
        elf = ensure_firmware(art, args.runtime, echo=lambda m: None)
        sweep = [run_once(art, elf, args.data, args.limit, 1, ctx=False)]
        sweep += [run_once(art, elf, args.data, args.limit, n) for n in counts]
        full = []
        if not args.no_full:
            full.append(run_once(art, elf, args.data, None, DEFAULT_EMULATORS))
            full.append(run_once(art, elf, args.data, None, 1))
    load_after = os.getloadavg()
    bad = [r for r in sweep + full if r["differing_from_tflm"] or r["images"] != r["images_requested"]]
    qemu_version = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    result = {
        "what": "lenet-mcu verify on emulated STM32F405 boards (QEMU netduinoplus2), one and several at once",
        "runtime": args.runtime,
        "qemu": qemu_version,
        "default_emulators": DEFAULT_EMULATORS,
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # QEMU shares the CPUs with everything else: a busy machine means slower numbers
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "sweep": sweep,
        "full_test_set": full,
        "speedup_full_default_vs_one_device": (full[1]["wall_seconds"] / full[0]["wall_seconds"]) if full else None,
    }
    write_json(args.out, result)

    print(
        "| boards | encoding | images | wall s | images/s | bytes to / from device per image | per board | differing |"
    )
    print("|---:|---|---:|---:|---:|---:|---|---:|")
    for r in sweep + full:
        print(
            f"| {r['devices']} | {r['encoding']} | {r['images']} | {r['wall_seconds']:.1f} | "
            f"{r['images_per_second']:.1f} | {r['bytes_to_device_per_image']:.1f} / "
            f"{r['bytes_from_device_per_image']:.1f} | {'/'.join(map(str, r['per_device_images']))} | "
            f"{r['differing_from_tflm']} |"
        )
    ref = full[0] if full else sweep[-1]
    print("\n| UART baud | wire time for 10,000 images | with compute at 168 MHz |")
    print("|---:|---:|---:|")
    for b in UART_BAUDS:
        u = ref["uart_seconds_for_10000"][str(b)]
        print(f"| {b} | {u['wire']:.0f} s | {u['with_compute']:.0f} s |")
    if full:
        print(
            f"\nall 10,000 images on {DEFAULT_EMULATORS} boards: {full[0]['wall_seconds']:.1f} s; on one board: "
            f"{full[1]['wall_seconds']:.1f} s ({result['speedup_full_default_vs_one_device']:.2f}x)"
        )
    print(f"load average {load_before[0]:.1f} -> {load_after[0]:.1f} on {os.cpu_count()} CPUs; results: {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
