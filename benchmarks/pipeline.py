"""Benchmark: the paper's LeNet-5 variants side by side, from training to the emulated board.

For each variant (subsampling avg | lecun | max, output softmax | rbf):
  host    `lenet-mcu pipeline --subsampling S --output O --until evaluate --no-resume`: wall time of
          the host stages (train + quantize + evaluate; target <= 5 minutes), float / int8
          tflite-runtime / int8 TFLM accuracy on the 10,000 test images
  device  for each runtime (native, TFLM reference kernels): `lenet-mcu build` and
          `lenet-mcu verify --devices 1` on all 10,000 test images on the emulated STM32F405
          (QEMU netduinoplus2, -icount shift=0): on-device accuracy, images whose output bytes
          differ from the TFLM reference (must be 0), flash and static RAM of the firmware,
          median instructions per inference (TIM2 ticks under -icount)
  params  trainable parameters of the Keras model
Results go to benchmarks/results/pipeline.json with a Markdown table (`table_markdown`);
the table is printed too.

    python benchmarks/pipeline.py --data DIR --tflm-dir TREE [--variants max-softmax,avg-softmax,...]
        [--keep DIR] [--reuse] [--images N] [--tflm-images N]

--reuse takes a variant's host stages from DIR/<variant> when its manifest shows the same
settings finished evaluate (their recorded stage times are reported, marked reused), so
the slow trainings can run apart from the device checks. Variants run one after the other.
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

import click

from lenet_mcu.config import OUTPUTS, SUBSAMPLINGS, make_config

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
VARIANTS = [f"{s}-{o}" for o in OUTPUTS for s in SUBSAMPLINGS]
DEFAULT = make_config().variant
TARGETS = {"int8_on_device_accuracy_min_default": 0.992, "host_stages_seconds_max": 300}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lenet_mcu.cli", *args]


def run(cmd: list[str], what: str) -> str:
    click.echo(f"   $ lenet-mcu {' '.join(cmd[3:])}")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise click.ClickException(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def finished_host_stages(artifacts: Path, variant: str) -> bool:
    manifest = artifacts / "manifest.json"
    if not manifest.is_file():
        return False
    m = json.loads(manifest.read_text())
    config = make_config(subsampling=variant.split("-")[0], output=variant.split("-")[1]).to_dict()
    return m.get("config") == config and "evaluate" in m.get("stages", {})


def host_stages(variant: str, artifacts: Path, data: list[str], reuse: bool) -> dict:
    sub, out = variant.split("-")
    reused = reuse and finished_host_stages(artifacts, variant)
    wall = None
    if not reused:
        t0 = time.perf_counter()
        run(cli("pipeline", "--subsampling", sub, "--output", out, "--until", "evaluate", "--no-resume",
                "--artifacts", str(artifacts), *data), f"{variant} host stages")
        wall = round(time.perf_counter() - t0, 1)
    manifest = json.loads((artifacts / "manifest.json").read_text())
    metrics = json.loads((artifacts / "metrics.json").read_text())
    stages = {k: v.get("stage_seconds") for k, v in manifest["stages"].items() if k in ("train", "quantize", "evaluate")}
    if stages.get("evaluate") is None:  # a standalone `lenet-mcu evaluate` records its time in metrics.json
        stages["evaluate"] = metrics["seconds"]["evaluate_total"]
    return {
        "reused": reused,
        "wall_seconds": wall if wall is not None else round(sum(stages.values()), 1),
        "stage_seconds": stages,
        "accuracy": metrics["accuracy"],
        "errors": metrics["errors"],
        "decision": metrics.get("decision"),
        "tflite_vs_tflm_images_differing": metrics["tflite_vs_tflm_outputs"]["images_differing"],
        "ops": manifest["stages"]["quantize"]["op_counts"],
        "tflite_sha256": manifest["artifacts"]["lenet5_int8.tflite"]["sha256"],
        "weights_sha256": manifest["stages"]["train"]["weights_sha256"],
    }


def trainable_parameters(artifacts: Path) -> int:
    code = ("import sys, numpy as np\nfrom lenet_mcu.train import load_keras_model\n"
            "m = load_keras_model(sys.argv[1])\nprint(int(sum(np.prod(w.shape) for w in m.trainable_weights)))")
    out = subprocess.run([sys.executable, "-c", code, str(artifacts / "lenet5.keras")], capture_output=True, text=True)
    if out.returncode != 0:
        raise click.ClickException(f"cannot count parameters: {out.stderr.strip()[-500:]}")
    return int(out.stdout.strip().splitlines()[-1])


def device(variant: str, runtime: str, artifacts: Path, data: list[str], tflm_dir: Path | None,
           images: int | None) -> dict:
    from lenet_mcu.artifacts import firmware_elf
    from lenet_mcu.firmware.build import size_report

    tflm = ["--tflm-dir", str(tflm_dir)] if runtime == "tflm" else []
    run(cli("build", "--runtime", runtime, "--artifacts", str(artifacts), *tflm), f"{variant} {runtime} build")
    limit = ["--limit", str(images)] if images else []
    t0 = time.perf_counter()
    run(cli("verify", "--devices", "1", "--runtime", runtime, "--no-progress", "--artifacts", str(artifacts),
            *limit, *data), f"{variant} {runtime} verify")
    seconds = round(time.perf_counter() - t0, 1)
    rep = json.loads((artifacts / "verify" / "report.json").read_text())
    size = size_report(firmware_elf(artifacts, runtime))
    return {
        "result": rep["result"], "images": rep["images"],
        "images_differing_from_tflm": rep["bitexact"]["images_differing"],
        "device_accuracy": rep["accuracy"]["device"],
        "agreement_float_model": rep["agreement"]["float_model"],
        "instructions_per_inference_median": rep["ticks"]["median"] if rep["ticks"] else None,
        "flash_bytes": size["flash_bytes"], "ram_static_bytes": size["ram_static_bytes"],
        "arena_bytes": rep["device"]["arena_bytes"], "verify_seconds": seconds,
    }


def markdown_table(results: dict) -> str:
    def pct(x):
        return "-" if x is None else f"{100 * x:.2f} %"

    head = ("| variant | float | int8 TFLM | on device (native) | bit-exact native / TFLM | parameters | "
            "flash native | RAM native | instructions native | instructions TFLM | host stages |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in results.items():
        h, n, t = r["host"], r["device"].get("native", {}), r["device"].get("tflm", {})

        def exact(d):
            return "-" if not d else f"{d['images'] - d['images_differing_from_tflm']}/{d['images']}"

        mark = " (default)" if name == DEFAULT else ""
        rows.append(
            f"| {name}{mark} | {pct(h['accuracy']['float'])} | {pct(h['accuracy']['tflm_int8'])} | "
            f"{pct(n.get('device_accuracy'))} | {exact(n)} / {exact(t)} | {r['parameters']:,} | "
            f"{n.get('flash_bytes', 0):,} B | {n.get('ram_static_bytes', 0):,} B | "
            f"{n.get('instructions_per_inference_median') or 0:,.0f} | "
            f"{t.get('instructions_per_inference_median') or 0:,.0f} | "
            f"{h['wall_seconds']:.0f} s{' (reused)' if h['reused'] else ''} |")
    return "\n".join(rows)


@click.command()
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=os.environ.get("LENET_MCU_MNIST_DIR"), help="MNIST IDX folder [default: $LENET_MCU_MNIST_DIR]")
@click.option("--variants", default=",".join(VARIANTS), show_default=True,
              help=f"comma-separated SUBSAMPLING-OUTPUT names: {', '.join(VARIANTS)}")
@click.option("--runtimes", default="native,tflm", show_default=True, help="device runtimes to check")
@click.option("--tflm-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=os.environ.get("TFLM_DIR"), help="TFLM source tree (for the tflm runtime) [default: $TFLM_DIR]")
@click.option("--images", type=click.IntRange(min=1), default=None, help="test images on the device [default: all]")
@click.option("--tflm-images", type=click.IntRange(min=1), default=None,
              help="test images on the TFLM firmware, whose reference kernels run many times the native "
                   "instructions [default: as --images]")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="keep each variant's artifacts under DIR/<variant> (default: temporary)")
@click.option("--reuse", is_flag=True, help="take host stages already finished in DIR/<variant> (needs --keep)")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=RESULTS, show_default=True)
def main(data_dir, variants, runtimes, tflm_dir, images, tflm_images, keep, reuse, out):
    """Compare the LeNet-5 variants: accuracy, size, speed and bit-exactness on the emulated board."""
    from lenet_mcu import atomic
    from lenet_mcu.artifacts import library_versions

    names = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise click.BadParameter(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    runtime_names = [r.strip() for r in runtimes.split(",") if r.strip()]
    if "tflm" in runtime_names and tflm_dir is None:
        raise click.BadParameter("the tflm runtime needs --tflm-dir (or $TFLM_DIR)")
    if reuse and keep is None:
        raise click.BadParameter("--reuse needs --keep DIR")
    data = ["--data", str(data_dir)] if data_dir else []
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="lenet-bench-") as tmp:
        for name in names:
            folder = (keep or Path(tmp)) / name
            click.echo(f"== {name}")
            host = host_stages(name, folder, data, reuse)
            results[name] = {"host": host, "parameters": trainable_parameters(folder),
                             "device": {r: device(name, r, folder, data, tflm_dir,
                                                  tflm_images or images if r == "tflm" else images)
                                        for r in runtime_names}}
            click.echo(f"   {json.dumps(results[name]['device'])}")
    table = markdown_table(results)
    default = results.get(DEFAULT)
    report = {
        "benchmark": "LeNet-5 variants: lenet-mcu pipeline, build and verify per variant",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "platform": platform.platform(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "note": "2 shared cores; other jobs may have been running (see the load averages)"},
        "versions": library_versions(),
        "default_variant": DEFAULT,
        "targets": TARGETS,
        "targets_met": None if default is None or "native" not in default["device"] else {
            "default_on_device_accuracy": default["device"]["native"]["device_accuracy"]
            >= TARGETS["int8_on_device_accuracy_min_default"],
            "default_host_stages_seconds": default["host"]["wall_seconds"] <= TARGETS["host_stages_seconds_max"],
        },
        "variants": results,
        "table_markdown": table,
    }
    atomic.write_json(out, report)
    click.echo(table)
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    main()
