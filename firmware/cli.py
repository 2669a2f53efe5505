"""`lenet-mcu build`: codegen (if stale) + firmware build for one runtime."""
from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.firmware.build import RUNTIMES, build_firmware, size_report

MODEL_FILE = "lenet5_int8.tflite"


def codegen_is_stale(tflite: Path, gen_dir: Path) -> bool:
    """True if gen_dir lacks model_info.h or any generated file is older than the model."""
    info = gen_dir / "model_info.h"
    if not info.is_file():
        return True
    model_time = tflite.stat().st_mtime
    return any(p.stat().st_mtime < model_time for p in gen_dir.iterdir() if p.is_file())


def ensure_codegen(runtime: str, artifacts: Path) -> Path:
    tflite = artifacts / MODEL_FILE
    if not tflite.is_file():
        raise LenetMcuError(f"{tflite} not found: run `lenet-mcu quantize --artifacts {artifacts}` first")
    gen_dir = artifacts / "codegen" / runtime
    if codegen_is_stale(tflite, gen_dir):
        from lenet_mcu.codegen import generate  # host-only, no TensorFlow
        click.echo(f"codegen: {tflite} -> {gen_dir}")
        generate(runtime, tflite, gen_dir)
    return gen_dir


@click.command()
@click.option("--runtime", type=click.Choice(RUNTIMES), default="native", show_default=True,
              help="inference engine compiled into the firmware")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
              show_default=True, help="artifacts folder (model in, codegen/ and build/ out)")
@click.option("--board", default="stm32f405", show_default=True, help="board directory under firmware/boards")
@click.option("--hse-hz", type=int, default=None,
              help="crystal frequency of the board in Hz (default 8000000; QEMU ignores it)")
@click.option("--tflm-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              envvar="TFLM_DIR", help="TensorFlow Lite Micro source tree (RUNTIME=tflm) [env TFLM_DIR]")
def build(runtime: str, artifacts: Path, board: str, hse_hz: int | None, tflm_dir: Path | None):
    """Generate C for the int8 model if needed and build firmware.elf."""
    gen_dir = ensure_codegen(runtime, artifacts)
    make_vars = {}
    if hse_hz is not None:
        make_vars["HSE_HZ"] = str(hse_hz)
    if tflm_dir is not None:
        make_vars["TFLM_DIR"] = str(tflm_dir.resolve())
    build_dir = artifacts / "build" / runtime
    elf = build_firmware(runtime, gen_dir, build_dir, board=board, make_vars=make_vars)
    size = size_report(elf)
    click.echo(f"{elf}: flash {size['flash_bytes']} B (text {size['text_bytes']} + data {size['data_bytes']}), "
               f"static RAM {size['ram_static_bytes']} B (data {size['data_bytes']} + bss {size['bss_bytes']} "
               f"+ stack {size['stack_reserved_bytes']})")
