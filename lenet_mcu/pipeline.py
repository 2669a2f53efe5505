"""The flow on top of the stages: each stage in order, and the "redo what is stale"
logic that crosses stages (codegen when the model or generator changed, a firmware
build when sources changed, an emulator for the check).

Stages are plain functions in STAGES; each returns a small summary dict that goes
into artifacts/manifest.json (lenet_mcu.artifacts). The stage packages never import
this module: it imports them, lazily, so `lenet-mcu verify` never loads TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lenet_mcu import artifacts as art
from lenet_mcu import atomic, boards, extras
from lenet_mcu.boards import DEFAULT_BOARD
from lenet_mcu.config import PipelineConfig, make_config
from lenet_mcu.errors import LenetMcuError

# Quieter TensorFlow (C++ info logs) for every command that may import it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CODEGEN_STAMP = "codegen.stamp"


def config_for_later_stage(artifacts: Path, *, fast: bool = False, **given) -> PipelineConfig:
    """quantize/evaluate on their own: start from the config the model was trained with (manifest),
    so the manifest keeps describing the model; values given (not None) still win."""
    recorded = art.read_manifest(artifacts).get("config")
    if not recorded:
        return make_config(fast=fast, **given)
    config = PipelineConfig.from_dict(recorded)
    if fast and given.get("calibration_size") is None:
        given["calibration_size"] = make_config(fast=True).calibration_size
    return dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})


# ---------------------------------------------------------------- stale or not
def codegen_is_stale(runtime: str, tflite: Path, gen_dir: Path) -> bool:
    """True if gen_dir lacks model_info.h or was generated from another model or generator."""
    from lenet_mcu.codegen import fingerprint

    stamp = gen_dir / CODEGEN_STAMP
    if not (gen_dir / "model_info.h").is_file() or not stamp.is_file():
        return True
    return stamp.read_text().strip() != fingerprint(runtime, tflite)


def ensure_codegen(runtime: str, artifacts: Path, echo: Callable[[str], None] = print) -> Path:
    """artifacts/codegen/<runtime>, generated again only if stale."""
    art.check_runtime(runtime)
    tflite = Path(artifacts) / art.TFLITE_MODEL
    if not tflite.is_file():
        raise LenetMcuError(f"{tflite} not found: run `lenet-mcu quantize --artifacts {artifacts}` first")
    gen_dir = art.codegen_dir(artifacts, runtime)
    if codegen_is_stale(runtime, tflite, gen_dir):
        extras.require_extra("codegen", f"generating C for {tflite}")
        from lenet_mcu.codegen import fingerprint, generate

        echo(f"codegen: {tflite} -> {gen_dir}")
        generate(runtime, tflite, gen_dir)
        atomic.write_text(gen_dir / CODEGEN_STAMP, fingerprint(runtime, tflite) + "\n")
    return gen_dir


def ensure_firmware(
    artifacts: Path,
    runtime: str = "native",
    *,
    board: str = DEFAULT_BOARD,
    tflm_dir: str | os.PathLike | None = None,
    make_vars: dict[str, str] | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Codegen if stale, then make (which redoes only what changed); returns firmware.elf."""
    from lenet_mcu.firmware.build import build_firmware

    gen_dir = ensure_codegen(runtime, artifacts, echo)
    make_vars = dict(make_vars or {})
    tflm_dir = tflm_dir or os.environ.get("TFLM_DIR")
    if tflm_dir:
        make_vars["TFLM_DIR"] = str(Path(tflm_dir).resolve())
    return build_firmware(runtime, gen_dir, art.build_dir(artifacts, runtime, board), board=board, make_vars=make_vars)


def built_firmware(artifacts: Path, runtime: str, board: str = DEFAULT_BOARD) -> Path:
    """The firmware `lenet-mcu build` made, without building (e.g. --no-build)."""
    elf = art.firmware_elf(artifacts, art.check_runtime(runtime), boards.get(board).name)
    if not elf.is_file():
        raise LenetMcuError(
            f"firmware {elf} not found: run `lenet-mcu build --runtime {runtime} --board {board}` first"
        )
    return elf


def verify_on_qemu(
    artifacts,
    runtime: str = "native",
    data_dir=None,
    limit: int | None = None,
    build: bool = True,
    tflm_dir=None,
    devices: int | None = None,
    board: str = DEFAULT_BOARD,
    **verify_kw,
) -> dict:
    """Build (if stale), run the check on `devices` emulated boards, stop them: the tail of the pipeline.

    The emulators belong to this process: they stop when the check ends, however
    it ends. Returns the verify report; raises VerifyFailed if any output byte differs.
    """
    from lenet_mcu.host.verify import DEFAULT_EMULATORS, run_verify

    log = verify_kw.get("log")
    elf = (
        ensure_firmware(artifacts, runtime, board=board, tflm_dir=tflm_dir, echo=log or print)
        if build
        else built_firmware(artifacts, runtime, board)
    )
    return run_verify(
        artifacts,
        data_dir=data_dir,
        limit=limit,
        devices=devices or DEFAULT_EMULATORS,
        elf=elf,
        board=board,
        **verify_kw,
    )


# ---------------------------------------------------------------- stages
@dataclass
class StageContext:
    config: PipelineConfig
    data_dir: Path | None
    artifacts: Path
    echo: Callable[[str], None] = print
    resume: bool = True
    runtime: str = "native"
    tflm_dir: Path | None = None
    verify_limit: int | None = None  # None: all test images (tests check fewer)
    board: str = DEFAULT_BOARD


def train_stage(ctx: StageContext) -> dict:
    from lenet_mcu.train import train

    record = train(ctx.config, ctx.data_dir, ctx.artifacts, resume=ctx.resume, echo=ctx.echo)
    return {k: record[k] for k in ("train_images", "weights_sha256", "float_test_accuracy", "seconds")}


def quantize_stage(ctx: StageContext) -> dict:
    from lenet_mcu.quantize.convert import quantize

    summary = quantize(ctx.config, ctx.data_dir, ctx.artifacts, echo=ctx.echo)
    return {
        k: summary[k]
        for k in (
            "op_counts",
            "bytes",
            "input_scale",
            "input_zero_point",
            "output_scale",
            "output_zero_point",
            "calibration_size",
            "variant",
            "smallest_wins",
        )
    }


def evaluate_summary(metrics: dict) -> dict:
    return {
        "model": metrics["model"],
        "accuracy": metrics["accuracy"],
        "agreement": metrics["agreement"],
        "tflite_vs_tflm_images_differing": metrics["tflite_vs_tflm_outputs"]["images_differing"],
    }


def evaluate_stage(ctx: StageContext) -> dict:
    from lenet_mcu.quantize.evaluate import evaluate

    return evaluate_summary(evaluate(ctx.data_dir, ctx.artifacts, echo=ctx.echo))


def codegen_stage(ctx: StageContext) -> dict:
    gen_dir = ensure_codegen(ctx.runtime, ctx.artifacts, ctx.echo)
    return {"runtime": ctx.runtime, "files": sorted(p.name for p in gen_dir.iterdir() if p.is_file())}


def build_stage(ctx: StageContext) -> dict:
    from lenet_mcu.firmware.build import size_report

    elf = ensure_firmware(ctx.artifacts, ctx.runtime, board=ctx.board, tflm_dir=ctx.tflm_dir, echo=ctx.echo)
    size = size_report(elf)
    ctx.echo(f"{elf}: flash {size['flash_bytes']} B, static RAM {size['ram_static_bytes']} B")
    return {
        "runtime": ctx.runtime,
        "board": ctx.board,
        "elf": elf.resolve().relative_to(ctx.artifacts.resolve()).as_posix(),
        **size,
    }


def verify_stage(ctx: StageContext) -> dict:
    """The emulated board: start QEMU, check all 10,000 test images over serial, stop QEMU."""
    from lenet_mcu.host import report

    rep = verify_on_qemu(
        ctx.artifacts,
        ctx.runtime,
        data_dir=ctx.data_dir,
        limit=ctx.verify_limit,
        build=False,
        board=ctx.board,
        log=ctx.echo,
    )
    for line in report.summary_lines(rep, ctx.artifacts):
        ctx.echo(line)
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
    art.update_manifest(ctx.artifacts, ctx.config, name, summary)
    return summary


def duration_table(seconds: dict[str, float], total: float) -> list[str]:
    """Stage durations, one line each, then the total."""
    width = max([len("total"), *map(len, seconds)])
    lines = [f"{'stage':<{width}}  {'seconds':>8}"]
    lines += [f"{name:<{width}}  {value:>8.1f}" for name, value in seconds.items()]
    return lines + [f"{'total':<{width}}  {total:>8.1f}"]


def run_pipeline(ctx: StageContext, stages=None) -> dict:
    t0 = time.perf_counter()
    results = {}
    try:
        for name, func in stages or STAGES:
            results[name] = run_stage(name, func, ctx)
    finally:
        # Also after a failure: the log shows where the time went up to there.
        if results:
            for line in duration_table({k: v["stage_seconds"] for k, v in results.items()}, time.perf_counter() - t0):
                ctx.echo(line)
    total = round(time.perf_counter() - t0, 2)
    manifest = art.read_manifest(ctx.artifacts)
    manifest["pipeline_seconds"] = total
    atomic.write_json(ctx.artifacts / art.MANIFEST, manifest)
    ctx.echo(f"pipeline finished in {total:.1f}s; artifacts in {ctx.artifacts}")
    return {"stages": results, "seconds": total}
