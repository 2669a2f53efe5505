"""`lenet-mcu codegen`: C sources for the int8 model, for one runtime."""
from __future__ import annotations

from pathlib import Path

import click

from lenet_mcu.codegen import RUNTIMES, generate

MODEL_FILE = "lenet5_int8.tflite"


@click.command()
@click.option("--runtime", type=click.Choice(RUNTIMES), default="native", show_default=True,
              help="native: interpreter-free C kernels; tflm: TensorFlow Lite Micro harness")
@click.option("--artifacts", type=click.Path(file_okay=False, path_type=Path), default=Path("artifacts"),
              show_default=True, help=f"artifacts folder: reads {MODEL_FILE}, writes codegen/<runtime>/")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"a .tflite to use instead of ARTIFACTS/{MODEL_FILE}")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="output folder instead of ARTIFACTS/codegen/<runtime>")
def codegen(runtime: str, artifacts: Path, model_path: Path | None, out_dir: Path | None):
    """Generate C for the int8 model (model_info.h plus the runtime's sources)."""
    tflite = model_path or artifacts / MODEL_FILE
    if not tflite.is_file():
        from lenet_mcu.errors import LenetMcuError

        hint = "" if model_path else f": run `lenet-mcu quantize --artifacts {artifacts}` first"
        raise LenetMcuError(f"{tflite} not found{hint}")
    out_dir = out_dir or artifacts / "codegen" / runtime
    written = generate(runtime, tflite, out_dir)
    click.echo(f"codegen ({runtime}): {tflite} -> {out_dir} ({', '.join(p.name for p in written)})")
    if runtime == "native":
        header = (out_dir / "native_model.h").read_text()
        figures = {f[1]: f[2] for f in (line.split() for line in header.splitlines())
                   if len(f) == 3 and f[0] == "#define"}
        click.echo(f"  {figures.get('NATIVE_MACS')} MACs per inference, activation arena {figures.get('NATIVE_ARENA_BYTES')} B")
