"""Benchmark: the default `lenet-mcu pipeline`, once per C3 variant, timed on this machine.

Records wall time, stage times, TFLM evaluation speed, float/int8 accuracy and
the tflite-runtime vs TFLM differences, and checks them against the targets
(float >= 99.0 %, int8 within 0.1 points of float, pipeline <= 5 minutes).
Results go to benchmarks/results/pipeline.json (small, committed, quoted in the README).

    python benchmarks/pipeline.py --data /path/to/mnist [--variants full-c3,c3-table] [--keep DIR]

Each run is a separate `lenet-mcu pipeline` process, one after the other (the
machine has 2 cores; running them together would distort the times).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lenet_mcu import artifacts as art
import click

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
VARIANTS = {"full-c3": "--full-c3", "c3-table": "--c3-table"}
TARGETS = {"float_accuracy_min": 0.990, "int8_drop_max_points": 0.1, "pipeline_seconds_max": 300}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_variant(name: str, flag: str, artifacts: Path, data_dir: Path | None, extra: list[str]) -> dict:
    # Host stages only (train, quantize, evaluate): the <= 5 minute target is for these.
    cmd = [sys.executable, "-m", "lenet_mcu.cli", "pipeline", flag, "--no-resume", "--until", "evaluate",
           "--artifacts", str(artifacts), *extra]
    if data_dir:
        cmd += ["--data", str(data_dir)]
    click.echo(f"== {name}: {' '.join(cmd[2:])}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    click.echo(proc.stdout)
    if proc.returncode != 0:
        raise click.ClickException(f"{name} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    metrics = json.loads((artifacts / art.METRICS).read_text())
    manifest = json.loads((artifacts / art.MANIFEST).read_text())
    training = json.loads((artifacts / art.TRAINING_RECORD).read_text())
    acc = metrics["accuracy"]
    drop = 100 * (acc["float"] - min(acc["tflite_int8"], acc["tflm_int8"]))
    return {
        "wall_seconds": round(wall, 1),
        "stage_seconds": {k: v["stage_seconds"] for k, v in manifest["stages"].items()},
        "epochs": manifest["config"]["epochs"],
        "train_seconds_per_epoch": round(sum(h["seconds"] for h in training["history"]) / len(training["history"]), 2),
        "accuracy": acc,
        "errors": metrics["errors"],
        "int8_drop_points": round(drop, 3),
        "agreement": metrics["agreement"],
        "tflite_vs_tflm_outputs": metrics["tflite_vs_tflm_outputs"],
        "evaluation_seconds": metrics["seconds"],
        # CPU time per image summed over the TFLM workers (wall time x workers / images).
        "tflm_cpu_ms_per_image": round(1000 * metrics["seconds"]["tflm"] * metrics["seconds"]["tflm_workers"]
                                   / metrics["test_images"], 3),
        "tflite_bytes": manifest["artifacts"][art.TFLITE_MODEL]["bytes"],
        "tflite_sha256": manifest["artifacts"][art.TFLITE_MODEL]["sha256"],
        "weights_sha256": manifest["stages"]["train"]["weights_sha256"],
        "targets_met": {
            "float_accuracy": acc["float"] >= TARGETS["float_accuracy_min"],
            "int8_within_0.1_points": drop <= TARGETS["int8_drop_max_points"],
            "pipeline_under_5_minutes": wall <= TARGETS["pipeline_seconds_max"],
        },
    }


@click.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=os.environ.get("LENET_MCU_MNIST_DIR"), help="MNIST IDX folder [default: $LENET_MCU_MNIST_DIR]")
@click.option("--variants", default="full-c3,c3-table", show_default=True, help="comma-separated: full-c3, c3-table")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep each variant's artifacts under DIR/<variant> (default: temporary)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=RESULTS, show_default=True)
@click.option("--fast", is_flag=True, help="benchmark the --fast setting instead (smoke check of this script)")
def main(data_dir, variants, keep, out, fast):
    """Time the default pipeline for each C3 variant and write the results JSON."""
    from lenet_mcu import atomic
    from lenet_mcu.artifacts import library_versions

    names = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        raise click.BadParameter(f"unknown variants {sorted(unknown)}; choose from {sorted(VARIANTS)}")
    extra = ["--fast"] if fast else []
    results = {}
    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as tmp:
        for name in names:
            folder = (keep or Path(tmp)) / name
            results[name] = run_variant(name, VARIANTS[name], folder, data_dir, extra)
    report = {
        "benchmark": "lenet-mcu pipeline" + (" --fast" if fast else " (defaults)"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "platform": platform.platform(),
                    "note": "2 shared cores; other jobs may have been running"},
        "versions": library_versions(),
        "targets": TARGETS,
        "variants": results,
    }
    atomic.write_json(out, report)
    for name, r in results.items():
        a = r["accuracy"]
        click.echo(f"{name:9s} float {100 * a['float']:.2f}%  tflite {100 * a['tflite_int8']:.2f}%  "
                   f"TFLM {100 * a['tflm_int8']:.2f}%  drop {r['int8_drop_points']:.2f} pt  "
                   f"wall {r['wall_seconds']:.0f}s  targets {r['targets_met']}")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
