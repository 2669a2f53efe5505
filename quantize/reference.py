"""int8 outputs of the .tflite on the MNIST test images, from two interpreters.

- tflite-runtime: the TFLite (desktop) kernels.
- tflite-micro: the TFLM reference kernels, i.e. what the microcontroller computes;
  its outputs are the golden reference for the serial check.

Run as its own process (`python -m lenet_mcu.quantize.reference MODEL --data DIR
--out FILE.npz`): tflite-runtime cannot load in a process that imported
TensorFlow, and the training pipeline has. This module imports no TensorFlow.
TFLM's Python interpreter takes about 1 ms per image here, so the images are
split over worker processes (default: up to 2).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

from lenet_mcu import atomic, mnist
from lenet_mcu.cleanup import die_with_parent
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.quantize.tflite_check import check_lenet_int8

TFLM_ARENA_BYTES = 64 * 1024  # generous for LeNet-5 (about 12 KiB of activations)


def quantized_test_inputs(data_dir, input_scale: float, input_zero_point: int, limit: int | None = None):
    """(int8 [N,32,32,1] inputs, uint8 labels) for the MNIST test split."""
    images, labels = mnist.load_split("test", data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return mnist.quantize_input(mnist.preprocess(images), input_scale, input_zero_point), labels


def run_tflite_runtime(model_path: Path, inputs: np.ndarray) -> np.ndarray:
    """int8 [N,10] outputs from tflite-runtime, one image per invoke (the model has batch 1)."""
    from tflite_runtime.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    outputs = np.empty((len(inputs), 10), dtype=np.int8)
    for i in range(len(inputs)):
        interpreter.set_tensor(in_index, inputs[i:i + 1])
        interpreter.invoke()
        outputs[i] = interpreter.get_tensor(out_index)[0]
    return outputs


def _tflm_chunk(args) -> np.ndarray:
    model_bytes, inputs = args
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model_bytes, arena_size=TFLM_ARENA_BYTES)
    outputs = np.empty((len(inputs), 10), dtype=np.int8)
    for i in range(len(inputs)):
        interpreter.set_input(inputs[i:i + 1], 0)
        interpreter.invoke()
        outputs[i] = interpreter.get_output(0)[0]
    return outputs


def run_tflm(model_path: Path, inputs: np.ndarray, workers: int = 1) -> np.ndarray:
    """int8 [N,10] outputs from the TFLM interpreter (reference kernels), over `workers` processes."""
    model_bytes = Path(model_path).read_bytes()
    if workers <= 1 or len(inputs) < 200:
        return _tflm_chunk((model_bytes, inputs))
    chunks = np.array_split(inputs, workers)
    # fork is safe here: this process holds no TensorFlow or interpreter threads.
    with multiprocessing.get_context("fork").Pool(workers, initializer=die_with_parent) as pool:
        parts = pool.map(_tflm_chunk, [(model_bytes, c) for c in chunks])
    return np.concatenate(parts)


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def compute_references(model_path: Path, data_dir, workers: int, limit: int | None = None) -> dict:
    info = check_lenet_int8(model_path)
    scale, zero_point = info.input.scales[0], info.input.zero_points[0]
    inputs, labels = quantized_test_inputs(data_dir, scale, zero_point, limit)
    t0 = time.perf_counter()
    tflite_out = run_tflite_runtime(model_path, inputs)
    t1 = time.perf_counter()
    tflm_out = run_tflm(model_path, inputs, workers)
    t2 = time.perf_counter()
    return {
        "labels": labels.astype(np.uint8),
        "tflite_int8": tflite_out,
        "tflm_int8": tflm_out,
        "input_scale": np.float32(scale),
        "input_zero_point": np.int32(zero_point),
        "output_scale": np.float32(info.output.scales[0]),
        "output_zero_point": np.int32(info.output.zero_points[0]),
        "tflite_seconds": np.float64(t1 - t0),
        "tflm_seconds": np.float64(t2 - t1),
        "tflm_workers": np.int32(workers),
    }


def save_npz(path: Path, arrays: dict) -> None:
    with atomic.atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="folder with the MNIST IDX files")
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, help="output .npz")
@click.option("--workers", type=int, default=None, help="TFLM worker processes (default: up to 2)")
@click.option("--limit", type=int, default=None, help="only the first N test images (debugging)")
def main(model, data_dir, out_path, workers, limit):
    """Write tflite-runtime and TFLM int8 outputs for the MNIST test images to an .npz."""
    die_with_parent()  # a killed evaluate takes its reference run along
    if "tensorflow" in sys.modules:  # guard against misuse: tflite-runtime would fail obscurely
        raise LenetMcuError("lenet_mcu.quantize.reference must run in a process without TensorFlow")
    arrays = compute_references(model, data_dir, workers or default_workers(), limit)
    save_npz(out_path, arrays)


def cli_entry(argv=None) -> None:
    try:
        main.main(args=argv, standalone_mode=False)
    except LenetMcuError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    cli_entry()
