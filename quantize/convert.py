"""Full-integer post-training quantization of the Keras LeNet-5 to an int8 .tflite.

The converter sees a tf.function with a fixed [1,32,32,1] input, so the graph
has static shapes: no SHAPE/STRIDED_SLICE/PACK around the Flatten, just one
RESHAPE. Calibration uses training images (never test images).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from lenet_mcu import atomic, mnist
from lenet_mcu.artifacts import KERAS_MODEL, TFLITE_MODEL
from lenet_mcu.config import PipelineConfig
from lenet_mcu.decision import smallest_wins
from lenet_mcu.errors import LenetMcuError
from lenet_mcu.quantize.tflite_check import check_lenet_int8, op_counts, op_problems
from lenet_mcu.tflite_model import load_model


def calibration_images(data_dir, config: PipelineConfig) -> np.ndarray:
    """A seeded random sample of preprocessed training images, float32 [n,32,32,1]."""
    images, _ = mnist.load_split("train", data_dir)
    n = config.calibration_size
    if not 1 <= n <= len(images):
        raise LenetMcuError(f"calibration size {n} is out of range, expected 1..{len(images)}")
    pick = np.sort(np.random.default_rng([config.seed, 0xCA1]).choice(len(images), size=n, replace=False))
    return mnist.preprocess(images[pick])


@contextlib.contextmanager
def quiet_converter():
    """Keep the converter's export listing and C++ notes (written to fds 1 and 2) off the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def convert_to_int8(model, calibration: np.ndarray) -> bytes:
    """Keras model -> int8 TFLite flatbuffer (int8 in/out, builtin int8 ops only)."""
    from lenet_mcu.tf_import import import_tensorflow

    tf = import_tensorflow()
    import keras

    # A batch-1 twin of the model (same layers, same weights): static shapes let the
    # converter fold the Flatten into one RESHAPE instead of SHAPE/STRIDED_SLICE/PACK.
    image = keras.Input(batch_shape=(1, *model.input_shape[1:]), name="image")
    fixed = keras.Model(image, model(image), name=model.name)

    def representative_dataset():
        for i in range(len(calibration)):
            yield [calibration[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with quiet_converter():
        return converter.convert()


def quantize(config: PipelineConfig, data_dir, artifacts: Path, echo=print) -> dict:
    """artifacts/lenet5.keras -> artifacts/lenet5_int8.tflite, checked; returns a summary."""
    from lenet_mcu.train import load_keras_model

    artifacts = Path(artifacts)
    model = load_keras_model(artifacts / KERAS_MODEL)
    calibration = calibration_images(data_dir, config)
    echo(f"quantizing with {len(calibration)} calibration images from the training set")
    flatbuffer = convert_to_int8(model, calibration)

    # Check before publishing: a graph the MCU runtimes cannot run must not land in artifacts/.
    out = artifacts / TFLITE_MODEL
    tmp = artifacts / f".{TFLITE_MODEL}.check"
    atomic.write_bytes(tmp, flatbuffer)
    try:
        ops = load_model(tmp).ops
        problems = op_problems(ops, config.subsampling, config.output)
        if problems:
            raise LenetMcuError(
                f"converted graph is not the int8 {config.variant} LeNet-5 ({'; '.join(problems)}); "
                f"ops: {' '.join(ops)}"
            )
        info = check_lenet_int8(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    atomic.write_bytes(out, flatbuffer)
    summary = {
        "ops": info.ops,
        "op_counts": op_counts(info.ops),
        "bytes": len(flatbuffer),
        "input_scale": info.input.scale,
        "input_zero_point": info.input.zero_point,
        "output_scale": info.output.scale,
        "output_zero_point": info.output.zero_point,
        "calibration_size": len(calibration),
        "variant": config.variant,
        "smallest_wins": smallest_wins(info.ops),
    }
    echo(f"wrote {out} ({len(flatbuffer)} bytes): {' '.join(info.ops)}")
    return summary
