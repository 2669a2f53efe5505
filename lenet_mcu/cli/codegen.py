"""`lenet-mcu codegen`: C sources for the int8 model, for one runtime."""

from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu.artifacts import TFLITE_MODEL, codegen_dir
from lenet_mcu.cli.options import artifacts_option, runtime_option
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.extras import require_extra


@click.command()
@runtime_option("native: interpreter-free C kernels; tflm: TensorFlow Lite Micro harness")
@artifacts_option(f"artifacts folder: reads {TFLITE_MODEL}, writes codegen/<runtime>/")
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"a .tflite to use instead of ARTIFACTS/{TFLITE_MODEL}",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="output folder instead of ARTIFACTS/codegen/<runtime>",
)
def codegen(runtime: str, artifacts: Path, model_path: Path | None, out_dir: Path | None):
    """Generate C for the int8 model (model_info.h plus the runtime's sources)."""
    require_extra("codegen", "`lenet-mcu codegen`")
    from lenet_mcu.codegen import generate

    tflite = model_path or artifacts / TFLITE_MODEL
    if not tflite.is_file():
        hint = "" if model_path else f": run `lenet-mcu quantize --artifacts {artifacts}` first"
        raise LenetMcuError(f"{tflite} not found{hint}")
    out_dir = out_dir or codegen_dir(artifacts, runtime)
    written = generate(runtime, tflite, out_dir)
    click.echo(f"codegen ({runtime}): {tflite} -> {out_dir} ({', '.join(p.name for p in written)})")
    if runtime == "native":
        header = (out_dir / "native_model.h").read_text()
        figures = {
            f[1]: f[2] for f in (line.split() for line in header.splitlines()) if len(f) == 3 and f[0] == "#define"
        }
        click.echo(
            f"  {figures.get('NATIVE_MACS')} MACs per inference, activation arena {figures.get('NATIVE_ARENA_BYTES')} B"
        )
