"""`lenet-mcu pipeline`: every stage in order, plus what the stage commands share.

Stages are plain functions in STAGES; a later stage (codegen, build, verify) is
added with one line there. Each stage returns a small summary dict that goes
into artifacts/manifest.json, which also records the sha256 of every artifact,
the config, the seed and the library versions.

This module imports no TensorFlow; the stages import it when they run.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click

from lenet_mcu import atomic, mnist
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.train.config import PipelineConfig, make_config

# Quieter TensorFlow (C++ info logs) for every command that may import it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_ARTIFACTS = Path("artifacts")
_FAST = make_config(fast=True)
MANIFEST_NAME = "manifest.json"
#: Files and folders in the artifacts folder that are not artifacts.
_NOT_ARTIFACTS = {MANIFEST_NAME, "checkpoint"}
_VERSIONED = ("lenet-mcu", "numpy", "tensorflow-cpu", "tensorflow", "keras", "tflite-runtime", "tflite-micro",
              "tflite", "click", "matplotlib")


# ---------------------------------------------------------------- options shared by the stage commands
def common_options(func):
    """--artifacts, --data, --seed, --epochs, --fast, --c3-table/--full-c3, --calibration-size."""
    options = [
        click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ARTIFACTS,
                     show_default=True, help="output folder for every artifact"),
        click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
                     help=f"folder with the four MNIST IDX files [default: ${mnist.DATA_ENV}]"),
        click.option("--seed", type=int, default=None, help=f"random seed [default: {PipelineConfig.seed}]"),
        click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help=f"training epochs [default: {PipelineConfig.epochs}, fast: {_FAST.epochs}]"),
        click.option("--fast", is_flag=True, help=f"smoke-test setting: {_FAST.epochs} epochs on {_FAST.train_subset} training images, "
                     f"{_FAST.calibration_size} calibration images (evaluation still uses all 10,000 test images)"),
        click.option("--c3-table/--full-c3", "c3_table", default=None,
                     help="C3 with the paper's 60-of-96 connection table, or fully connected [default: --full-c3]"),
        click.option("--calibration-size", type=click.IntRange(min=1, max=60000), default=None,
                     help=f"training images used to calibrate int8 quantization [default: {PipelineConfig.calibration_size}]"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_from_options(seed, epochs, fast, c3_table, calibration_size) -> PipelineConfig:
    return make_config(fast=fast, seed=seed, epochs=epochs, c3_table=c3_table, calibration_size=calibration_size)


def config_for_later_stage(artifacts: Path, seed, epochs, fast, c3_table, calibration_size) -> PipelineConfig:
    """quantize/evaluate on their own: start from the config the model was trained with (manifest),
    so the manifest keeps describing the model; options given on the command line still win."""
    import dataclasses

    recorded = read_manifest(artifacts).get("config")
    if not recorded:
        return config_from_options(seed, epochs, fast, c3_table, calibration_size)
    config = PipelineConfig.from_dict(recorded)
    if fast and calibration_size is None:
        calibration_size = make_config(fast=True).calibration_size
    changes = {k: v for k, v in dict(seed=seed, epochs=epochs, c3_table=c3_table,
                                     calibration_size=calibration_size).items() if v is not None}
    return dataclasses.replace(config, **changes)


def check_data_dir(data_dir) -> Path | None:
    """Fail fast (before TensorFlow loads) if --data / $LENET_MCU_MNIST_DIR lacks the IDX files."""
    folder = mnist.resolve_data_dir(data_dir)
    if folder is not None:
        for image_stem, label_stem, _ in mnist.SPLITS.values():
            mnist._find(folder, image_stem)
            mnist._find(folder, label_stem)
    return folder


# ---------------------------------------------------------------- manifest
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def artifact_hashes(artifacts: Path) -> dict[str, dict]:
    """sha256 and size of every file under the artifacts folder (hidden and temporary files excluded)."""
    out = {}
    for path in sorted(artifacts.rglob("*")):
        rel = path.relative_to(artifacts)
        if not path.is_file() or rel.parts[0] in _NOT_ARTIFACTS or any(p.startswith(".") for p in rel.parts):
            continue
        out[rel.as_posix()] = {"sha256": atomic.sha256_file(path), "bytes": path.stat().st_size}
    return out


def read_manifest(artifacts: Path) -> dict:
    import json

    path = Path(artifacts) / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise LenetMcuError(f"manifest {path} is not valid JSON ({exc}); delete it or the artifacts folder") from None


def update_manifest(artifacts: Path, config: PipelineConfig | None = None, stage: str | None = None,
                    summary: dict | None = None) -> dict:
    """Record a finished stage, rehash every artifact, write manifest.json atomically."""
    artifacts = Path(artifacts)
    manifest = read_manifest(artifacts)
    if config is not None:
        manifest["config"] = config.to_dict()
        manifest["seed"] = config.seed
    if stage is not None:
        stages = manifest.setdefault("stages", {})
        stages[stage] = {**(summary or {}),
                         "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    manifest["versions"] = library_versions()
    manifest["artifacts"] = artifact_hashes(artifacts)
    atomic.write_json(artifacts / MANIFEST_NAME, manifest)
    return manifest


# ---------------------------------------------------------------- stages
@dataclass
class StageContext:
    config: PipelineConfig
    data_dir: Path | None
    artifacts: Path
    echo: Callable[[str], None] = click.echo
    resume: bool = True
    runtime: str = "native"
    tflm_dir: Path | None = None
    verify_limit: int | None = None  # None: all test images (tests check fewer)


def train_stage(ctx: StageContext) -> dict:
    from lenet_mcu.train.training import train

    record = train(ctx.config, ctx.data_dir, ctx.artifacts, resume=ctx.resume, echo=ctx.echo)
    return {k: record[k] for k in ("train_images", "weights_sha256", "float_test_accuracy", "seconds")}


def quantize_stage(ctx: StageContext) -> dict:
    from lenet_mcu.quantize.convert import quantize

    summary = quantize(ctx.config, ctx.data_dir, ctx.artifacts, echo=ctx.echo)
    return {k: summary[k] for k in ("op_counts", "bytes", "input_scale", "input_zero_point", "output_scale",
                                    "output_zero_point", "calibration_size")}


def evaluate_stage(ctx: StageContext) -> dict:
    from lenet_mcu.quantize.evaluate import evaluate

    metrics = evaluate(ctx.data_dir, ctx.artifacts, echo=ctx.echo)
    return {"accuracy": metrics["accuracy"], "agreement": metrics["agreement"],
            "tflite_vs_tflm_images_differing": metrics["tflite_vs_tflm_outputs"]["images_differing"]}


def codegen_stage(ctx: StageContext) -> dict:
    from lenet_mcu.firmware.cli import ensure_codegen

    gen_dir = ensure_codegen(ctx.runtime, ctx.artifacts)
    return {"runtime": ctx.runtime, "files": sorted(p.name for p in gen_dir.iterdir() if p.is_file())}


def build_stage(ctx: StageContext) -> dict:
    from lenet_mcu.firmware.build import size_report
    from lenet_mcu.host.flash import ensure_firmware

    elf = ensure_firmware(ctx.artifacts, ctx.runtime, tflm_dir=ctx.tflm_dir)
    size = size_report(elf)
    ctx.echo(f"{elf}: flash {size['flash_bytes']} B, static RAM {size['ram_static_bytes']} B")
    return {"runtime": ctx.runtime, "elf": elf.resolve().relative_to(ctx.artifacts.resolve()).as_posix(), **size}


def verify_stage(ctx: StageContext) -> dict:
    """Emulated STM32F405: start QEMU, check all 10,000 test images over serial, stop QEMU."""
    from lenet_mcu.host import report
    from lenet_mcu.host.cli import print_summary
    from lenet_mcu.host.verify import verify_on_qemu

    rep = verify_on_qemu(ctx.artifacts, ctx.runtime, data_dir=ctx.data_dir, limit=ctx.verify_limit,
                         build=False, log=ctx.echo)
    print_summary(ctx.artifacts, rep)
    return report.summary(rep)


#: (name, function) in run order: host stages, then the device (emulated board).
STAGES: list[tuple[str, Callable[[StageContext], dict]]] = [
    ("train", train_stage),
    ("quantize", quantize_stage),
    ("evaluate", evaluate_stage),
    ("codegen", codegen_stage),
    ("build", build_stage),
    ("verify", verify_stage),
]
STAGE_NAMES = [name for name, _ in STAGES]


def run_stage(name: str, func: Callable[[StageContext], dict], ctx: StageContext) -> dict:
    ctx.echo(f"== {name}")
    t0 = time.perf_counter()
    summary = func(ctx)
    summary = {**summary, "stage_seconds": round(time.perf_counter() - t0, 2)}
    update_manifest(ctx.artifacts, ctx.config, name, summary)
    return summary


def run_pipeline(ctx: StageContext, stages=None) -> dict:
    t0 = time.perf_counter()
    results = {}
    for name, func in stages or STAGES:
        results[name] = run_stage(name, func, ctx)
    total = round(time.perf_counter() - t0, 2)
    manifest = read_manifest(ctx.artifacts)
    manifest["pipeline_seconds"] = total
    atomic.write_json(ctx.artifacts / MANIFEST_NAME, manifest)
    ctx.echo(f"pipeline finished in {total:.1f}s; artifacts in {ctx.artifacts}")
    return {"stages": results, "seconds": total}


@click.command()
@common_options
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="continue training from the per-epoch checkpoint if one with the same settings exists")
@click.option("--until", type=click.Choice(STAGE_NAMES), default=STAGE_NAMES[-1], show_default=True,
              help="last stage to run (evaluate: host only, no firmware)")
@click.option("--runtime", type=click.Choice(["native", "tflm"]), default="native", show_default=True,
              help="inference engine in the firmware (tflm needs --tflm-dir)")
@click.option("--tflm-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              envvar="TFLM_DIR", help="TensorFlow Lite Micro source tree for --runtime tflm [env TFLM_DIR]")
def pipeline(artifacts, data_dir, seed, epochs, fast, c3_table, calibration_size, resume, until, runtime, tflm_dir):
    """All stages in order into --artifacts: train, quantize, evaluate, codegen,
    build, and verify on the emulated STM32F405 (QEMU)."""
    data_dir = check_data_dir(data_dir)
    config = config_from_options(seed, epochs, fast, c3_table, calibration_size)
    stages = STAGES[:STAGE_NAMES.index(until) + 1]
    run_pipeline(StageContext(config=config, data_dir=data_dir, artifacts=artifacts, resume=resume,
                              runtime=runtime, tflm_dir=tflm_dir), stages)
