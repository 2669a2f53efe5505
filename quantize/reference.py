"""int8 outputs of the .tflite on the MNIST test images, from the two host interpreters.

- desktop TFLite (tflite-runtime or ai-edge-litert) with its reference kernels;
- tflite-micro: the TFLM reference kernels, i.e. what the microcontroller computes;
  its outputs are the golden reference for the serial check.

Both run through lenet_mcu.interpreters. Run as its own process
(`python -m lenet_mcu.quantize.reference MODEL --data DIR --out FILE.npz`):
tflite-runtime cannot load in a process that imported TensorFlow, and the
training pipeline has. This module imports no TensorFlow. The images are split
over worker processes (default: up to 2); progress goes to stdout as lines.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

from lenet_mcu import atomic, mnist
from lenet_mcu.cleanup import die_with_parent
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.interpreters import TfliteInterpreter, TflmInterpreter, default_workers, run_batch
from lenet_mcu.progress import Progress
from lenet_mcu.quantize.tflite_check import check_lenet_int8


def quantized_test_inputs(data_dir, input_scale: float, input_zero_point: int, limit: int | None = None):
    """(int8 [N,32,32,1] inputs, uint8 labels) for the MNIST test split."""
    images, labels = mnist.load_split("test", data_dir)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return mnist.quantize_input(mnist.preprocess(images), input_scale, input_zero_point), labels


def _outputs(kind: str, desc: str, model_path: Path, inputs: np.ndarray, workers: int) -> np.ndarray:
    with Progress(len(inputs), desc, interactive=False) as progress:
        return run_batch(kind, model_path, inputs, workers, on_progress=progress.set).astype(np.int8)


def compute_references(model_path: Path, data_dir, workers: int, limit: int | None = None) -> dict:
    info = check_lenet_int8(model_path)
    inputs, labels = quantized_test_inputs(data_dir, info.input.scale, info.input.zero_point, limit)
    t0 = time.perf_counter()
    tflite_name = f"{TfliteInterpreter(model_path).name} {TfliteInterpreter.version()}"
    tflite_out = _outputs("tflite", f"int8 {tflite_name.split()[0]}", model_path, inputs, workers)
    t1 = time.perf_counter()
    tflm_out = _outputs("tflm", "int8 TFLM", model_path, inputs, workers)
    t2 = time.perf_counter()
    return {
        "labels": labels.astype(np.uint8),
        "tflite_int8": tflite_out,
        "tflm_int8": tflm_out,
        "input_scale": np.float32(info.input.scale),
        "input_zero_point": np.int32(info.input.zero_point),
        "output_scale": np.float32(info.output.scale),
        "output_zero_point": np.int32(info.output.zero_point),
        "tflite_interpreter": np.array(tflite_name),
        "tflm_interpreter": np.array(f"{TflmInterpreter.name} {TflmInterpreter.version()}"),
        "tflite_seconds": np.float64(t1 - t0),
        "tflm_seconds": np.float64(t2 - t1),
        "tflm_workers": np.int32(workers),
    }


def save_npz(path: Path, arrays: dict) -> None:
    with atomic.atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--data", "data_dir", type=click.Path(path_type=Path), default=None, help="folder with the MNIST IDX files"
)
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, help="output .npz")
@click.option("--workers", type=int, default=None, help="worker processes per interpreter (default: up to 2)")
@click.option("--limit", type=int, default=None, help="only the first N test images (debugging)")
def main(model, data_dir, out_path, workers, limit):
    """Write desktop TFLite and TFLM int8 outputs for the MNIST test images to an .npz."""
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
