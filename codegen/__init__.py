"""Stage 3: the int8 model as C: native interpreter-free runtime and TFLite Micro harness.

    from lenet_mcu.codegen import generate
    generate("native", "artifacts/lenet5_int8.tflite", "artifacts/codegen/native")

Nothing in this package imports TensorFlow.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lenet_mcu.artifacts import RUNTIMES
from lenet_mcu.errors import LenetMcuError


def fingerprint(runtime: str, tflite_path: str | Path) -> str:
    """sha256 over the runtime, the model bytes and this generator's own sources and
    templates: generated C is stale when the model *or* the generator changed."""
    import hashlib

    h = hashlib.sha256(runtime.encode() + b"\0" + Path(tflite_path).read_bytes())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".j2"}:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def generate(runtime: str, tflite_path: str | Path, out_dir: str | Path) -> list[Path]:
    """Generate the C sources of `runtime` for the model at tflite_path into out_dir.

    Returns the files written. Raises LenetMcuError for a model the runtime
    cannot run (unsupported operator, type or shape), before anything is written.
    """
    if runtime == "native":
        from lenet_mcu.codegen import native

        return native.generate(tflite_path, out_dir)
    if runtime == "tflm":
        try:
            tflm = importlib.import_module("lenet_mcu.codegen.tflm")
        except ModuleNotFoundError as exc:
            if exc.name != "lenet_mcu.codegen.tflm":
                raise
            raise LenetMcuError(
                "the tflm code generator (lenet_mcu.codegen.tflm) is not part of this install"
            ) from None
        generator = getattr(tflm, "generate", None) or getattr(tflm, "generate_tflm", None)
        if generator is None:
            raise LenetMcuError("lenet_mcu.codegen.tflm has no generate() function")
        result = generator(tflite_path, out_dir)
        if isinstance(result, (list, tuple)):
            return [Path(p) for p in result]
        return sorted(p for p in Path(out_dir).iterdir() if p.is_file())
    raise LenetMcuError(f"runtime {runtime!r} is unknown, expected one of {', '.join(RUNTIMES)}")
