"""Tiny int8 .tflite models for the TFLM harness tests (no training, no TensorFlow).

Built with lenet_mcu.tflite_model.build_model (the schema object API that
tflite-micro ships), so the codegen tests run on any machine in seconds.
"""

from __future__ import annotations

import numpy as np

from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model

IN_SCALE, IN_ZP = 1 / 255, -128
TANH_OUT = (1 / 128, 0)  # TFLM's int8 TANH wants this output quantization
SOFTMAX_OUT = (1 / 256, -128)


def mini_lenet(pool: str = "AVERAGE_POOL_2D", extra_op: str | None = None, input_name: str = "image") -> bytes:
    """x[1,6,6,1] -> CONV_2D 3x3x2 -> TANH -> <pool> 2x2 -> FULLY_CONNECTED 3 -> TANH
    -> FULLY_CONNECTED 4 -> SOFTMAX; `extra_op` (one-input, same-shape) is inserted
    after the first TANH, e.g. an op TFLM lacks."""
    rng = np.random.default_rng(0)
    w1_scales = [0.02, 0.03]
    t = [
        TensorSpec(input_name, (1, 6, 6, 1), "int8", IN_SCALE, IN_ZP),  # 0
        TensorSpec("conv/filter", (2, 3, 3, 1), "int8", w1_scales, 0, data=rng.integers(-127, 128, (2, 3, 3, 1))),  # 1
        TensorSpec(
            "conv/bias", (2,), "int32", [IN_SCALE * s for s in w1_scales], 0, data=rng.integers(-500, 500, (2,))
        ),  # 2
        TensorSpec("conv/out", (1, 4, 4, 2), "int8", 0.05, 3),  # 3
        TensorSpec("conv/tanh", (1, 4, 4, 2), "int8", *TANH_OUT),  # 4
        TensorSpec("pool", (1, 2, 2, 2), "int8", *TANH_OUT),  # 5
        TensorSpec("fc1/weights", (3, 8), "int8", 0.01, 0, data=rng.integers(-127, 128, (3, 8))),  # 6
        TensorSpec("fc1/bias", (3,), "int32", TANH_OUT[0] * 0.01, 0, data=rng.integers(-100, 100, (3,))),  # 7
        TensorSpec("fc1/out", (1, 3), "int8", 0.04, -2),  # 8
        TensorSpec("fc1/tanh", (1, 3), "int8", *TANH_OUT),  # 9
        TensorSpec("fc2/weights", (4, 3), "int8", 0.02, 0, data=rng.integers(-127, 128, (4, 3))),  # 10
        TensorSpec("fc2/bias", (4,), "int32", TANH_OUT[0] * 0.02, 0, data=rng.integers(-100, 100, (4,))),  # 11
        TensorSpec("fc2/out", (1, 4), "int8", 0.1, 1),  # 12
        TensorSpec("probabilities", (1, 4), "int8", *SOFTMAX_OUT),  # 13
    ]
    pool_input = 4
    ops = [
        OperatorSpec(
            "CONV_2D",
            [0, 1, 2],
            [3],
            {"padding": 1, "strideW": 1, "strideH": 1, "dilationWFactor": 1, "dilationHFactor": 1},
        ),
        OperatorSpec("TANH", [3], [4]),
    ]
    if extra_op is not None:
        t.append(TensorSpec("extra", (1, 4, 4, 2), "int8", *TANH_OUT))  # 14
        ops.append(OperatorSpec(extra_op, [4], [14]))
        pool_input = 14
    ops += [
        OperatorSpec(
            pool, [pool_input], [5], {"padding": 1, "strideW": 2, "strideH": 2, "filterWidth": 2, "filterHeight": 2}
        ),
        OperatorSpec("FULLY_CONNECTED", [5, 6, 7], [8]),
        OperatorSpec("TANH", [8], [9]),
        OperatorSpec("FULLY_CONNECTED", [9, 10, 11], [12]),
        OperatorSpec("SOFTMAX", [12], [13], {"beta": 1.0}),
    ]
    return build_model(t, ops, [0], [13])
