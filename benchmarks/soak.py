"""Benchmark: a long serial check against one emulated board, with resets injected.

    python benchmarks/soak.py --artifacts artifacts [--data DIR] [--rounds 10] [--limit 10000] [--reset-every 20]

One emulated STM32F405 with the native firmware runs `verify` over the first
--limit test images, --rounds times in a row (10 x 10,000 = 100,000 inferences
by default). During every round the emulator is killed and restarted on the
same port every --reset-every seconds (a power cycle: verify must notice,
reconnect and resend what was open). After each round: throughput, the
device's counters (frames answered, errors, bytes dropped, stack peak) and
whether every image was answered exactly once with 0 bytes differing.
Reports the throughput drift from the first to the last round. Results go to
benchmarks/results/soak.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from lenet_mcu.artifacts import MANIFEST, METRICS, REFERENCES, TFLITE_MODEL, verify_dir
from lenet_mcu.atomic import write_json
from lenet_mcu.host import flash
from lenet_mcu.host.checkpoint import read as read_checkpoint
from lenet_mcu.host.verify import CHECKPOINT_FILE, run_verify
from lenet_mcu.pipeline import ensure_firmware

PIPELINE_FILES = (TFLITE_MODEL, REFERENCES, MANIFEST, METRICS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--data", default=None, help="MNIST folder [default: $LENET_MCU_MNIST_DIR]")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--limit", type=int, default=10000, help="images per round")
    ap.add_argument("--reset-every", type=float, default=20.0, help="seconds between injected resets (0: none)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        art = Path(tmp) / "artifacts"
        art.mkdir()
        for name in PIPELINE_FILES:
            if (args.artifacts / name).exists():
                shutil.copy2(args.artifacts / name, art / name)
        elf = ensure_firmware(art, "native", echo=lambda m: None)
        state = flash.flash_qemu(art, elf, log=lambda m: None)
        port = state["port"]
        try:
            for k in range(args.rounds):
                shutil.rmtree(verify_dir(art), ignore_errors=True)
                stop = threading.Event()
                resets = []

                def inject(stop=stop, resets=resets):
                    while args.reset_every > 0 and not stop.wait(args.reset_every):
                        flash.stop_qemu(art)
                        flash.start_qemu(art, elf, port=port)
                        resets.append(time.monotonic())

                injector = threading.Thread(target=inject, daemon=True)
                t0 = time.monotonic()
                injector.start()
                error = None
                try:
                    rep = run_verify(
                        art,
                        port=state["url"],
                        data_dir=args.data,
                        limit=args.limit,
                        progress=False,
                        reports=False,
                        log=lambda m: None,
                    )
                except Exception as exc:  # noqa: BLE001 - a failed round is a result here
                    rep, error = None, str(exc)
                finally:
                    stop.set()
                    injector.join()
                wall = time.monotonic() - t0
                lines = (verify_dir(art) / CHECKPOINT_FILE).read_text().splitlines()[1:]
                records, _, _, damaged = read_checkpoint(verify_dir(art) / CHECKPOINT_FILE)
                r = {
                    "round": k,
                    "wall_seconds": wall,
                    "error": error,
                    "resets_injected": len(resets),
                    "result_lines": len(lines),
                    "distinct_images": len(records),
                    "damaged_lines": len(damaged),
                    "exactly_once": len(lines) == len(records) == args.limit,
                }
                if rep is not None:
                    r.update(
                        {
                            "images_per_second": rep["throughput"]["images_per_second"],
                            "differing_from_tflm": rep["bitexact"]["images_differing"],
                            "resets_detected": rep["link"]["resets_detected"],
                            "reconnects": rep["link"]["reconnects"],
                            "retransmits": rep["link"]["retransmits"],
                            "device_stats": rep["device_stats"],
                        }
                    )
                rounds.append(r)
                print(
                    f"round {k}: {wall:.1f} s, {r.get('images_per_second') or 0:.1f} images/s, "
                    f"{len(resets)} resets injected, exactly once: {r['exactly_once']}, "
                    f"differing: {r.get('differing_from_tflm')}{', error: ' + error if error else ''}",
                    flush=True,
                )
        finally:
            flash.stop_qemu(art)
    rates = [r["images_per_second"] for r in rounds if r.get("images_per_second")]
    result = {
        "what": "lenet-mcu verify soak: one emulated STM32F405, repeated rounds, emulator restarts injected",
        "host": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "rounds": rounds,
        "inferences": sum(r["distinct_images"] for r in rounds),
        "throughput_drift_last_vs_first": (rates[-1] / rates[0]) if len(rates) > 1 else None,
        "all_exactly_once_and_bit_exact": all(r["exactly_once"] and r.get("differing_from_tflm") == 0 for r in rounds),
    }
    write_json(args.out, result)
    print(
        f"{result['inferences']} inferences in {len(rounds)} rounds; throughput last/first round "
        f"{result['throughput_drift_last_vs_first'] or float('nan'):.2f}; every result exactly once and "
        f"bit-exact: {result['all_exactly_once_and_bit_exact']}; results: {args.out}"
    )
    return 0 if result["all_exactly_once_and_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
