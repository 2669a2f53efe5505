"""`lenet-mcu build`: codegen (if stale) + firmware build for one runtime."""
from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu.errors import LenetMcuError
from lenet_mcu.firmware.build import RUNTIMES, build_firmware, size_report

MODEL_FILE = "lenet5_int8.tflite"


STAMP_FILE = "codegen.stamp"


def codegen_fingerprint(runtime: str, tflite: Path) -> str:
    """sha256 over the model bytes and the code generator's own sources and templates,
    so a new model *or* a changed generator makes the generated C stale."""
    import hashlib

    import lenet_mcu.codegen as codegen_pkg

    h = hashlib.sha256(runtime.encode() + b"\0" + tflite.read_bytes())
    root = Path(codegen_pkg.__file__).resolve().parent
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".j2"}:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def codegen_is_stale(runtime: str, tflite: Path, gen_dir: Path) -> bool:
    """True if gen_dir lacks model_info.h or was generated from another model or generator."""
    stamp = gen_dir / STAMP_FILE
    if not (gen_dir / "model_info.h").is_file() or not stamp.is_file():
        return True
    return stamp.read_text().strip() != codegen_fingerprint(runtime, tflite)


def ensure_codegen(runtime: str, artifacts: Path) -> Path:
    tflite = artifacts / MODEL_FILE
    if not tflite.is_file():
        raise LenetMcuError(f"{tflite} not found: run `lenet-mcu quantize --artifacts {artifacts}` first")
    gen_dir = artifacts / "codegen" / runtime
    if codegen_is_stale(runtime, tflite, gen_dir):
        from lenet_mcu import atomic
        from lenet_mcu.codegen import generate  # host-only, no TensorFlow

        click.echo(f"codegen: {tflite} -> {gen_dir}")
        generate(runtime, tflite, gen_dir)
        atomic.write_text(gen_dir / STAMP_FILE, codegen_fingerprint(runtime, tflite) + "\n")
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
