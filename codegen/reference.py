"""Tables the code generators take from the golden reference itself.

`tanh_lut(...)` runs every int8 input through the TFLM TANH kernel (a one-op
model written with lenet_mcu.tflite_model), so the native runtime's lookup table
is TFLM's arithmetic by construction. Importing this module never imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from lenet_mcu.interpreters import TflmInterpreter
from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model


def tanh_lut(input_scale: float, input_zero_point: int, output_scale: float, output_zero_point: int) -> np.ndarray:
    """int8 TANH of every int8 input (-128..127), computed by the TFLM TANH kernel itself.

    Returns int8[256] indexed by input + 128.
    """
    model = build_model(
        [
            TensorSpec("x", (1, 256), "int8", input_scale, input_zero_point),
            TensorSpec("tanh_x", (1, 256), "int8", output_scale, output_zero_point),
        ],
        [OperatorSpec("TANH", [0], [1])],
        [0],
        [1],
    )
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    return TflmInterpreter(model).run_one(x).reshape(256).astype(np.int8)
