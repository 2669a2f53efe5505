"""The host interpreters that run a .tflite: the one place that drives them.

- `TflmInterpreter`: TensorFlow Lite Micro (the tflite-micro package), the golden
  reference: its reference kernels are what the microcontroller must reproduce
  byte for byte.
- `TfliteInterpreter`: desktop TFLite with its *reference* kernels (no XNNPACK,
  no optimized kernels), from tflite-runtime where it installs (Python 3.11 on
  Linux) and from its successor ai-edge-litert elsewhere; the host int8
  comparison in the evaluation.
- `run_batch(kind, model, inputs, workers)`: many inputs, split over worker processes.

tflite-runtime cannot load in a process that imported TensorFlow; callers that
did (the evaluation) run it in a child process. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import importlib.metadata
import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lenet_mcu import extras
from lenet_mcu.cleanup import die_with_parent
from lenet_mcu.errors import LenetMcuError

#: Default TFLM arena: ample for LeNet-5-sized models, grown for bigger files.
TFLM_MIN_ARENA_BYTES = 64 * 1024

#: Import name and distribution of each desktop TFLite package, in order of preference.
TFLITE_PACKAGES = (("tflite_runtime", "tflite-runtime"), ("ai_edge_litert", "ai-edge-litert"))


def model_bytes(model: bytes | str | Path) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    try:
        return Path(model).read_bytes()
    except OSError as exc:
        raise LenetMcuError(f"model file {model} cannot be read: {exc.strerror or exc}") from None


class TflmInterpreter:
    """One TFLM interpreter for one model; `run_one` takes one input (batch 1)."""

    name = "tflite-micro"

    def __init__(self, model: bytes | str | Path, preserve_all_tensors: bool = False, arena_size: int | None = None):
        runtime = extras.require("tflite_micro.python.tflite_micro.runtime", "the TFLM reference interpreter")
        data = model_bytes(model)
        config = (
            runtime.InterpreterConfig.kPreserveAllTensors
            if preserve_all_tensors
            else runtime.InterpreterConfig.kAllocationRecording
        )
        try:
            self.interpreter = runtime.Interpreter.from_bytes(
                data, arena_size=arena_size or max(TFLM_MIN_ARENA_BYTES, 10 * len(data)), intrepreter_config=config
            )
        except Exception as exc:  # TFLM reports Prepare failures as RuntimeError
            raise LenetMcuError(f"the TFLM interpreter rejects the model: {exc}") from None
        details = self.interpreter.get_input_details(0)
        self.input_shape = tuple(int(d) for d in details["shape"])
        self.input_dtype = np.dtype(details["dtype"])

    @staticmethod
    def version() -> str:
        return _version("tflite-micro")

    def run_one(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_input(np.asarray(x, self.input_dtype).reshape(self.input_shape), 0)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_output(0), copy=True)

    def tensor(self, index: int) -> np.ndarray:
        """A tensor after invoke (needs preserve_all_tensors=True): for layer-by-layer debugging."""
        return np.array(self.interpreter.GetTensor(index, 0), copy=True)


def tflite_package(module: str | None = None) -> tuple[str, str]:
    """(import name, distribution) of the desktop TFLite interpreter to use: `module` if given,
    else the first of TFLITE_PACKAGES this install has."""
    for name, dist in TFLITE_PACKAGES:
        if (module is None or module == name) and extras.is_installed(name):
            return name, dist
    if module is not None:
        raise extras.MissingExtra(extras.missing_message(module, "the host TFLite interpreter"))
    raise extras.MissingExtra(
        extras.missing_message("tflite_runtime", "the host TFLite interpreter")
        + " (or ai-edge-litert where tflite-runtime has no wheel)"
    )


class TfliteInterpreter:
    """Desktop TFLite with its reference kernels (BUILTIN_REF), so no optimized or XNNPACK code runs."""

    def __init__(self, model: bytes | str | Path, package: str | None = None):
        module, self.name = tflite_package(package)
        api = extras.require(f"{module}.interpreter", "the host TFLite interpreter")
        try:
            self.interpreter = api.Interpreter(
                model_content=model_bytes(model),
                num_threads=1,
                experimental_op_resolver_type=api.OpResolverType.BUILTIN_REF,
            )
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise LenetMcuError(f"{self.name} rejects the model: {exc}") from None
        self._in = self.interpreter.get_input_details()[0]
        self._out = self.interpreter.get_output_details()[0]

    @staticmethod
    def version(package: str | None = None) -> str:
        return _version(tflite_package(package)[1])

    def run_one(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._in["index"], np.asarray(x, self._in["dtype"]).reshape(self._in["shape"]))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self._out["index"]), copy=True)


def make_interpreter(kind: str, model: bytes | str | Path):
    """ "tflm", "tflite" (the preferred desktop package), or a desktop package by import name."""
    if kind == "tflm":
        return TflmInterpreter(model)
    if kind == "tflite":
        return TfliteInterpreter(model)
    if kind in dict(TFLITE_PACKAGES):
        return TfliteInterpreter(model, package=kind)
    raise ValueError(f"unknown interpreter {kind!r}")


_ARENA_SCRIPT = textwrap.dedent("""
    import sys
    from tflite_micro.python.tflite_micro import runtime
    try:
        from tflite_micro.python.tflite_micro import _version
        version = getattr(_version, "__version__", "unknown")
    except ImportError:
        version = "unknown"
    data = open(sys.argv[1], "rb").read()
    interpreter = runtime.Interpreter.from_bytes(
        data, arena_size=max(1 << 20, 10 * len(data)),
        intrepreter_config=runtime.InterpreterConfig.kAllocationRecording)
    sys.stdout.write("tflite_micro_version " + version + "\\n")
    sys.stdout.flush()
    interpreter.print_allocations()  # TFLM's MicroPrintf: stderr on the host
""")
_ALLOCATION_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def measure_tflm_arena(model_path: str | Path, timeout: float = 120.0) -> tuple[int, int, int, str]:
    """(total, head, tail) arena bytes TFLM allocates for the model, and the tflite-micro version.

    Runs in a child process: TFLM prints its allocation report from C, to stderr.
    """
    extras.require("tflite_micro", "measuring the TFLM arena")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _ARENA_SCRIPT, str(model_path)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise LenetMcuError(f"measuring the TFLM arena of {model_path} took over {timeout:.0f} s") from None
    log = proc.stdout + proc.stderr
    found = {k: int(v) for k, v in _ALLOCATION_LINE.findall(log)}
    if proc.returncode != 0 or "total" not in found:
        detail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise LenetMcuError(f"the tflite-micro interpreter cannot allocate model {model_path}: {detail}")
    version = re.search(r"tflite_micro_version (\S+)", log)
    return found["total"], found.get("head", 0), found.get("tail", 0), version.group(1) if version else "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _run_chunk(args) -> np.ndarray:
    kind, data, inputs = args
    interpreter = make_interpreter(kind, data)
    return np.stack([interpreter.run_one(x) for x in inputs])


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_batch(
    kind: str,
    model: bytes | str | Path,
    inputs: np.ndarray,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 500,
) -> np.ndarray:
    """Outputs [N, *output_shape] of `kind` (see make_interpreter) for inputs [N, ...], one invoke each.

    With workers > 1 the inputs are split over that many processes; `on_progress(done)`
    is called after every chunk of inputs.
    """
    data = model_bytes(model)
    inputs = np.asarray(inputs)
    parts = [inputs[i : i + chunk] for i in range(0, len(inputs), chunk)]
    results = []
    if workers <= 1 or len(parts) <= 1:
        interpreter = make_interpreter(kind, data)
        for part in parts:
            results.append(np.stack([interpreter.run_one(x) for x in part]))
            if on_progress:
                on_progress(sum(len(r) for r in results))
    else:
        # fork is safe on Linux here: the caller holds no TensorFlow or interpreter threads.
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with context.Pool(workers, initializer=die_with_parent) as pool:
            for result in pool.imap(_run_chunk, [(kind, data, part) for part in parts]):
                results.append(result)
                if on_progress:
                    on_progress(sum(len(r) for r in results))
    if not results:
        return np.zeros((0,), np.int8)
    out = np.concatenate(results)
    # Drop the batch-1 axis of the model's output: [N, 1, C] -> [N, C].
    return out.reshape((len(inputs),) + out.shape[2:]) if out.ndim > 2 and out.shape[1] == 1 else out


def run_tflm(
    model: bytes | str | Path, inputs: np.ndarray, workers: int = 1, on_progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """The golden reference outputs for `inputs`."""
    return run_batch("tflm", model, inputs, workers, on_progress)
