"""Benchmark: serial-check throughput on QEMU, and what the same traffic costs on a real UART.

    python benchmarks/verify.py --artifacts artifacts [--data DIR] [--windows 1,2,4,8] [--limit 1000]

Works on a scratch copy of the artifacts folder (your artifacts/verify is left
alone): builds the native firmware, starts QEMU (-icount shift=0 unless
--no-icount), runs `verify` once per window size (INFER frames in flight) on
the first --limit images, then over all 10,000 with the default window, and
prints a Markdown table. Results go to benchmarks/results/verify.json.

The 115200-baud figure is computed from the bytes measured on the wire
(8N1: 10 bits per byte, one request at a time as on a real board) plus the
compute time the tick count implies at 168 MHz if one tick were one cycle.
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
from lenet_mcu.host import flash
from lenet_mcu.host.verify import run_verify
from lenet_mcu.pipeline import ensure_firmware

PIPELINE_FILES = (TFLITE_MODEL, REFERENCES, MANIFEST, METRICS)
CORE_HZ = 168_000_000
BAUD = 115200


def run_once(art: Path, data_dir, limit, window: int) -> dict:
    shutil.rmtree(verify_dir(art), ignore_errors=True)
    t0 = time.monotonic()
    rep = run_verify(art, data_dir=data_dir, limit=limit, window=window, progress=False, reports=False,
                     log=lambda m: None)
    wall = time.monotonic() - t0
    th, wire, ticks = rep["throughput"], rep["throughput"]["wire"], rep["ticks"]
    n = rep["images"]
    per_image_wire = wire["uart_115200_seconds_per_image"]
    compute = ticks["median"] / CORE_HZ
    return {
        "window": window,
        "images": n,
        "differing_from_tflm": rep["bitexact"]["images_differing"],
        "stream_seconds": th["session_seconds"],
        "wall_seconds_incl_setup": wall,
        "images_per_second": th["images_per_second"],
        "seconds_for_10000": 10000 / th["images_per_second"],
        "ticks_median": ticks["median"],
        "tick_unit": ticks["unit"],
        "bytes_to_device_per_image": wire["bytes_to_device_per_image"],
        "bytes_from_device_per_image": wire["bytes_from_device_per_image"],
        "uart_115200_wire_seconds_for_10000": per_image_wire * 10000,
        "uart_115200_with_compute_seconds_for_10000": (per_image_wire + compute) * 10000,
        "link": {k: rep["link"][k] for k in ("retransmits", "timeouts", "bad_frames_received")},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--data", default=None, help="MNIST folder [default: $LENET_MCU_MNIST_DIR]")
    ap.add_argument("--runtime", default="native", choices=RUNTIMES)
    ap.add_argument("--windows", default="1,2,4,8", help="window sizes to compare on --limit images")
    ap.add_argument("--limit", type=int, default=1000, help="images per window-size run")
    ap.add_argument("--no-full", action="store_true", help="skip the run over all 10,000 images")
    ap.add_argument("--icount", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "verify.json")
    args = ap.parse_args(argv)

    windows = [int(w) for w in args.windows.split(",") if w]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        art = Path(tmp) / "artifacts"
        art.mkdir()
        for name in PIPELINE_FILES:
            if (args.artifacts / name).exists():
                shutil.copy2(args.artifacts / name, art / name)
        t0 = time.monotonic()
        state = flash.flash_qemu(art, ensure_firmware(art, args.runtime, echo=lambda m: None), args.runtime,
                                 icount=args.icount, log=lambda m: None)
        build_s = time.monotonic() - t0
        try:
            sweep = [run_once(art, args.data, args.limit, w) for w in windows]
            full = None if args.no_full else run_once(art, args.data, None, 4)
        finally:
            flash.stop_qemu(art)
    qemu_version = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {
        "what": "lenet-mcu verify throughput on QEMU netduinoplus2 (STM32F405)",
        "runtime": args.runtime,
        "icount": args.icount,
        "qemu": qemu_version,
        "host": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count(),
                 # QEMU shares the CPUs with everything else: a busy machine means slower numbers
                 "load_average_1min_before": load_before, "load_average_1min_after": os.getloadavg()[0]},
        "build_and_boot_seconds": build_s,
        "elf_sha256": state["elf_sha256"],
        "window_sweep": sweep,
        "full_test_set": full,
    }
    write_json(args.out, result)

    print("| window | images | images/s | 10,000 images | bytes to / from device per image | "
          "115200 baud: wire only / with compute | differing |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in sweep + ([full] if full else []):
        print(f"| {r['window']} | {r['images']} | {r['images_per_second']:.1f} | {r['seconds_for_10000']:.0f} s | "
              f"{r['bytes_to_device_per_image']:.0f} / {r['bytes_from_device_per_image']:.0f} | "
              f"{r['uart_115200_wire_seconds_for_10000']:.0f} s / {r['uart_115200_with_compute_seconds_for_10000']:.0f} s | "
              f"{r['differing_from_tflm']} |")
    print(f"ticks per inference (median): {sweep[0]['ticks_median']:.0f} {sweep[0]['tick_unit']}; "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
