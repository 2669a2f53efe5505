"""Each native kernel against TFLite Micro, through the real path: one-op (or fused) model
-> lenet-mcu codegen -> gcc -> every output byte compared with the tflite-micro interpreter.
"""
from __future__ import annotations

import numpy as np
import pytest

from lenet_mcu.codegen import native
from lenet_mcu.interpreters import TflmInterpreter, run_tflm
from lenet_mcu.tflite_model import load_model

from native_util import (depthwise_model, rbf_model, conv_model, conv_reshape_fc_model, fc_model, have_gcc, lenet_convs_model, native_outputs,
                         pool_model, random_inputs, unary_model)

pytestmark = pytest.mark.skipif(not have_gcc(), reason="gcc is not installed")

COUNT = 2000  # random int8 inputs per model


def check(model: bytes, tmp_path, rng, count: int = COUNT, extra: np.ndarray | None = None):
    x = random_inputs(rng, count, TflmInterpreter(model).input_shape[1:])
    if extra is not None:
        x = np.concatenate([extra.reshape((-1,) + x.shape[1:]), x])
    want = run_tflm(model, x).reshape(len(x), -1)
    got = native_outputs(model, x, tmp_path)
    bad = np.nonzero(np.any(got != want, axis=1))[0]
    assert bad.size == 0, (f"{bad.size} of {len(x)} inputs differ; first #{bad[0]}:\n"
                           f"tflm   {want[bad[0]][:16]}\nnative {got[bad[0]][:16]}")
    return want


@pytest.mark.parametrize("in_shape,out_c,kernel,stride,activation,per_channel", [
    ((32, 32, 1), 6, (5, 5), (1, 1), "NONE", True),      # LeNet C1
    ((14, 14, 6), 16, (5, 5), (1, 1), "NONE", True),     # LeNet C3
    ((5, 5, 16), 120, (5, 5), (1, 1), "NONE", True),     # LeNet C5
    ((11, 9, 3), 5, (3, 3), (2, 2), "RELU", True),       # odd channel count, stride 2
    ((10, 13, 4), 4, (3, 2), (1, 3), "RELU6", False),    # per-tensor filter, non-square
    ((8, 8, 7), 3, (1, 1), (1, 1), "RELU_N1_TO_1", True),
    ((5, 6, 3), 66, (3, 3), (2, 1), "NONE", True),       # > 64 channels: the direct (non-im2col) kernel
])
def test_conv2d_matches_tflm(tmp_path, in_shape, out_c, kernel, stride, activation, per_channel):
    rng = np.random.default_rng(hash((in_shape, out_c, stride)) % 2**32)
    want = check(conv_model(rng, in_shape, out_c, kernel, stride, activation, per_channel), tmp_path, rng)
    # the test is only meaningful if the outputs are spread out, not all clamped
    assert len(np.unique(want)) > 20


@pytest.mark.parametrize("pool", [None, ((2, 2), (2, 2)), ((3, 3), (2, 2))])
def test_conv_tanh_pool_fusion_matches_tflm(tmp_path, pool):
    """conv + TANH (+ AVERAGE_POOL_2D): fused into one kernel when the pool tiles the conv output."""
    rng = np.random.default_rng(7)
    model = conv_model(rng, (16, 16, 2), 6, (5, 5), (1, 1), tanh=True, pool=pool)
    steps = native.lower(load_model_bytes(model, tmp_path)).steps
    fused = pool is None or pool[0] == pool[1]
    assert [s.kind for s in steps] == (["conv_s16"] if fused else ["conv_s16", "pool"])
    check(model, tmp_path, rng)


@pytest.mark.parametrize("in_shape,filt,stride,padding,activation", [
    ((28, 28, 6), (2, 2), (2, 2), "VALID", "NONE"),   # LeNet S2
    ((10, 10, 16), (2, 2), (2, 2), "VALID", "NONE"),  # LeNet S4
    ((9, 7, 3), (3, 3), (2, 2), "SAME", "NONE"),      # border windows with fewer taps
    ((9, 9, 2), (3, 2), (1, 2), "VALID", "RELU"),
])
def test_average_pool_matches_tflm(tmp_path, in_shape, filt, stride, padding, activation):
    rng = np.random.default_rng(11)
    check(pool_model(in_shape, filt, stride, padding, activation=activation), tmp_path, rng)


@pytest.mark.parametrize("in_features,out_features,per_channel,activation,tanh", [
    (120, 84, True, "NONE", True),   # LeNet F6 + tanh
    (84, 10, True, "NONE", False),   # LeNet output layer
    (50, 7, False, "RELU", False),   # per-tensor weights: float32 scale product
    (33, 1, True, "NONE", False),    # single output, odd lengths
])
def test_fully_connected_matches_tflm(tmp_path, in_features, out_features, per_channel, activation, tanh):
    rng = np.random.default_rng(in_features * 100 + out_features)
    check(fc_model(rng, in_features, out_features, per_channel, activation, tanh), tmp_path, rng)


@pytest.mark.parametrize("in_scale,in_zp", [(0.0133, 8), (0.0303, 15), (0.0412, -1), (0.2, -128), (0.001, 127)])
def test_tanh_table_matches_tflm_for_every_input(tmp_path, in_scale, in_zp):
    """All 256 int8 inputs through a standalone TANH (the table comes from TFLM itself)."""
    rng = np.random.default_rng(3)
    every = np.arange(-128, 128, dtype=np.int8).reshape(256, 1, 1, 1)
    model = unary_model("TANH", (1, 1, 1, 1), in_scale, in_zp, 1.0 / 128, 0)
    check(model, tmp_path, rng, count=10, extra=every)


@pytest.mark.parametrize("in_scale,beta,depth", [
    (0.0747, 1.0, 10),   # the LeNet output layer
    (0.02, 1.0, 10),
    (0.25, 1.0, 10),     # large scale: many inputs below diff_min
    (0.1, 0.5, 17),
    (0.004, 2.0, 3),
])
def test_softmax_matches_tflm(tmp_path, in_scale, beta, depth):
    rng = np.random.default_rng(int(in_scale * 1e4) + depth)
    model = unary_model("SOFTMAX", (1, 1, 1, depth), in_scale, -3, 1.0 / 256, -128, {"beta": beta})
    # also rows with ties, all equal values, and extremes
    special = np.array([[127] * depth, [-128] * depth, [0] * depth,
                        [127] + [-128] * (depth - 1), [-128] * (depth - 1) + [127]], dtype=np.int8)
    check(model, tmp_path, rng, count=5000, extra=special)


def load_model_bytes(model: bytes, tmp_path):
    path = tmp_path / "lowered.tflite"
    path.write_bytes(model)
    return load_model(path)


@pytest.mark.parametrize("reshape_last", [False, True])
def test_reshape_is_an_alias_or_a_copy(tmp_path, reshape_last):
    """A Flatten between layers costs nothing (same buffer); a RESHAPE producing the graph output is a copy."""
    rng = np.random.default_rng(5)
    model = conv_reshape_fc_model(rng, reshape_last)
    kinds = [s.kind for s in native.lower(load_model_bytes(model, tmp_path)).steps]
    assert kinds == (["conv_s16", "fc_pairs", "copy"] if reshape_last else ["conv_s16", "fc_pairs"])
    check(model, tmp_path, rng)


def test_left_shift_requantization_matches_tflm(tmp_path):
    """Effective scale > 1 (positive shift): the rarely used left-shift path of the requantization."""
    from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model

    rng = np.random.default_rng(17)
    in_scale, w_scales = 0.05, np.array([0.02, 0.03, 0.011], np.float32)
    out_scale = 0.0004  # in_scale * w_scale / out_scale = 2.5 .. 3.75 -> shift 2
    model = build_model(
        [TensorSpec("input", (1, 4, 4, 1), "int8", in_scale, 3),
         TensorSpec("filter", (3, 1, 1, 1), "int8", list(w_scales), 0, 0,
                    rng.integers(-2, 3, size=(3, 1, 1, 1), dtype=np.int8)),
         TensorSpec("bias", (3,), "int32", [in_scale * float(s) for s in w_scales], 0, 0,
                    np.array([5, -7, 0], np.int32)),
         TensorSpec("conv", (1, 4, 4, 3), "int8", out_scale, -4)],
        [OperatorSpec("CONV_2D", [0, 1, 2], [3], {"padding": 1, "strideW": 1, "strideH": 1,
                                                   "dilationWFactor": 1, "dilationHFactor": 1})], [0], [3])
    plan = native.lower(load_model_bytes(model, tmp_path))
    assert plan.steps[0].params["max_shift"] > 0
    want = check(model, tmp_path, rng)
    assert len(np.unique(want)) > 20


@pytest.mark.parametrize("table", [False, True])
def test_lenet_convs_with_an_int16_handoff_match_tflm(tmp_path, table):
    """C1 (one input channel: the 2x2-window kernel with shifted filter variants) hands S2 to C3
    as int16 channel-pair planes; with the C3 connection table the absent connections are zeros."""
    from lenet_mcu.train.architecture import c3_connection_matrix

    rng = np.random.default_rng(31 if table else 30)
    model = lenet_convs_model(rng, c3_connection_matrix() if table else None)
    steps = native.lower(load_model_bytes(model, tmp_path)).steps
    assert [s.kind for s in steps] == ["conv_s16", "conv_s16", "fc_pairs"]
    assert steps[0].params["quad"] == 1 and steps[0].params["out_pairs"] == 1 and steps[1].params["in_pairs"] == 1
    want = check(model, tmp_path, rng)
    assert len(np.unique(want)) > 40


@pytest.mark.parametrize("in_shape,filt,stride,padding,activation", [
    ((28, 28, 6), (2, 2), (2, 2), "VALID", "NONE"),   # LeNet S2 (max pooling variant)
    ((10, 10, 16), (2, 2), (2, 2), "VALID", "NONE"),  # LeNet S4
    ((9, 7, 3), (3, 3), (2, 2), "SAME", "NONE"),      # border windows with fewer taps
    ((9, 9, 2), (3, 2), (1, 2), "VALID", "RELU"),     # overlapping windows, clamped
])
def test_max_pool_matches_tflm(tmp_path, in_shape, filt, stride, padding, activation):
    rng = np.random.default_rng(12)
    model = pool_model(in_shape, filt, stride, padding, activation=activation, op="MAX_POOL_2D")
    assert [s.kind for s in native.lower(load_model_bytes(model, tmp_path)).steps] == ["max_pool"]
    check(model, tmp_path, rng)


@pytest.mark.parametrize("in_shape,kernel,stride,tanh,equal_taps,per_channel", [
    ((28, 28, 6), (2, 2), (2, 2), True, True, True),     # LeNet S2, LeCun subsampling
    ((10, 10, 16), (2, 2), (2, 2), True, True, True),    # LeNet S4
    ((9, 11, 5), (3, 2), (2, 3), False, False, True),    # any taps, unequal strides, no tanh
    ((6, 6, 4), (2, 2), (1, 1), True, False, False),     # per-tensor filter, overlapping windows
])
def test_depthwise_conv_matches_tflm(tmp_path, in_shape, kernel, stride, tanh, equal_taps, per_channel):
    """DEPTHWISE_CONV_2D (+ TANH fused as a table): LeCun's trainable subsampling."""
    rng = np.random.default_rng(in_shape[0] * 10 + kernel[0])
    model = depthwise_model(rng, in_shape, kernel, stride, tanh, equal_taps, per_channel)
    assert [s.kind for s in native.lower(load_model_bytes(model, tmp_path)).steps] == ["depthwise"]
    want = check(model, tmp_path, rng)
    assert len(np.unique(want)) > 20


@pytest.mark.parametrize("with_sum,constant_first,scales", [
    (True, False, {}),                                          # the RBF layer as converted
    (False, False, {}),                                         # SQUARED_DIFFERENCE alone
    (False, True, {"code_scale": 0.02, "x_scale": 0.003, "x_zp": 11, "sq_scale": 0.04}),  # constant first, larger scale
    (True, False, {"sq_scale": 0.02, "sq_zp": -100, "out_scale": 0.9, "out_zp": -120}),
])
def test_rbf_distances_match_tflm(tmp_path, with_sum, constant_first, scales):
    """SQUARED_DIFFERENCE against the constant codes (rows broadcast) and SUM over the last axis."""
    rng = np.random.default_rng(21 + 2 * with_sum + constant_first)
    model = rbf_model(rng, with_sum=with_sum, constant_first=constant_first, **scales)
    kinds = [s.kind for s in native.lower(load_model_bytes(model, tmp_path)).steps]
    assert kinds == (["squared_difference", "sum"] if with_sum else ["squared_difference"])
    want = check(model, tmp_path, rng)
    assert len(np.unique(want)) > 10


def test_sum_refuses_other_axes(tmp_path):
    from lenet_mcu.tflite_model import OperatorSpec, TensorSpec, build_model
    from lenet_mcu.errors import LenetMcuError

    model = build_model([TensorSpec("x", (1, 10, 84), "int8", 0.01, 0),
                         TensorSpec("axis", (1,), "int32", None, None, data=np.array([1], np.int32)),
                         TensorSpec("y", (1, 84), "int8", 0.1, 0)],
                        [OperatorSpec("SUM", [0, 1], [2], {"keepDims": False})], [0], [2])
    with pytest.raises(LenetMcuError, match="innermost axis only"):
        native.lower(load_model_bytes(model, tmp_path))


@pytest.mark.parametrize("in_shape,out_c", [((32, 32, 1), 6), ((14, 14, 6), 16), ((9, 12, 3), 4)])
def test_conv_tanh_max_pool_fusion_matches_tflm(tmp_path, in_shape, out_c):
    """conv + TANH + MAX_POOL_2D 2x2 (the max variant's C1/S2, C3/S4): the int16 kernel keeps the
    window's largest output instead of the sum, one kernel, no conv output buffer."""
    rng = np.random.default_rng(in_shape[0] + out_c)
    model = conv_model(rng, in_shape, out_c, (5, 5), (1, 1), tanh=True, pool=((2, 2), (2, 2)),
                       pool_op="MAX_POOL_2D")
    steps = native.lower(load_model_bytes(model, tmp_path)).steps
    assert [s.kind for s in steps] == ["conv_s16"] and steps[0].params["pool_max"] == 1
    want = check(model, tmp_path, rng)
    assert len(np.unique(want)) > 20
