"""The fast kernels' arithmetic against TFLM's, in numpy: the one-multiply requantization
(nn_requantize.h) and the channel-pair dot product (nn_fully_connected_pairs.h)."""

from __future__ import annotations

import numpy as np
import pytest

from lenet_mcu.codegen.native import layouts
from lenet_mcu.codegen.native.tflm_arithmetic import multiply_by_quantized_multiplier, requantization
from lenet_mcu.tflite_model import load_model

EXHAUSTIVE_LIMIT = 40_000_000  # accumulator values per layer checked one by one; larger layers are sampled


def smmlar_requantize(acc: np.ndarray, multiplier: int, offset: int, r: int) -> np.ndarray:
    """nn_requantize_doubled in integer numpy: SMMLAR(2 acc, M, offset - [acc < 0]) >> r."""
    accumulate = offset - (acc < 0).astype(np.int64)
    return ((accumulate << 32) + 2 * acc * multiplier + (1 << 31)) >> 32 >> r


def check_requantization(multiplier: int, shift: int, zero_point: int, acc: np.ndarray):
    consts = layouts.requantize_constants(np.array([multiplier]), np.array([shift]), zero_point)
    assert consts is not None
    offset, r = consts
    want = multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point
    got = smmlar_requantize(acc, multiplier, int(offset[0]), int(r[0]))
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (
        f"M={multiplier} shift={shift} zp={zero_point}: acc={acc[bad[0]]} gives {got[bad[0]]}, TFLM {want[bad[0]]}"
    )


def test_one_multiply_requantization_equals_tflm_for_random_multipliers():
    rng = np.random.default_rng(11)
    acc = np.arange(-(1 << 18), 1 << 18, dtype=np.int64)
    for multiplier in [1 << 30, (1 << 31) - 1, *rng.integers(1 << 30, 1 << 31, size=10)]:
        for shift in (-1, -2, -11, -20):
            check_requantization(int(multiplier), shift, int(rng.integers(-128, 128)), acc)


def test_one_multiply_requantization_is_refused_where_it_does_not_apply():
    assert layouts.requantize_constants(np.array([1 << 30]), np.array([0]), 0) is None  # no right shift
    assert layouts.requantize_constants(np.array([1 << 30]), np.array([2]), 0) is None  # left shift
    assert layouts.requantize_constants(np.array([0]), np.array([-3]), 0) is None  # flushed multiplier


def test_one_multiply_requantization_equals_tflm_on_every_reachable_accumulator(fast_artifacts):
    """For the LeNet layers' real multipliers: every accumulator an int8 input can produce
    (exhaustive where the range is small, else 200,000 samples per channel plus both ends)."""
    model = load_model(fast_artifacts / "lenet5_int8.tflite")
    rng = np.random.default_rng(5)
    layers = 0
    for op in model.operators:
        if op.op not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        x, w, b, y = (model.tensors[i] for i in (op.inputs[0], op.inputs[1], op.inputs[2], op.outputs[0]))
        weights = w.data.reshape(w.shape[0], -1).astype(np.int64)
        channels = weights.shape[0]
        mult, shift = requantization(x.scale, w.scales, y.scale, channels, per_tensor_float_product=False)
        folded = b.data.astype(np.int64) - x.zero_point * weights.sum(axis=1)
        bound = layouts.accumulator_bound(folded, weights)
        exhaustive = int((2 * bound + 1).sum()) <= EXHAUSTIVE_LIMIT
        for c in range(channels):
            if exhaustive:
                acc = np.arange(-bound[c], bound[c] + 1, dtype=np.int64)
            else:
                acc = np.concatenate(
                    [
                        rng.integers(-bound[c], bound[c] + 1, size=200_000),
                        np.arange(-bound[c], -bound[c] + 1000),
                        np.arange(bound[c] - 1000, bound[c] + 1),
                    ]
                )
            check_requantization(int(mult[c]), int(shift[c]), y.zero_point, acc)
        layers += 1
    assert layers == 5


def sxtb16(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = (v & 0xFF).astype(np.int64)
    hi = ((v >> 16) & 0xFF).astype(np.int64)
    return np.where(lo > 127, lo - 256, lo), np.where(hi > 127, hi - 256, hi)


def halves(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = (v & 0xFFFF).astype(np.int64)
    hi = (v >> 16).astype(np.int64)
    return np.where(lo > 32767, lo - 65536, lo), np.where(hi > 32767, hi - 65536, hi)


@pytest.mark.parametrize("n", [1, 7, 120, 400])
def test_channel_pair_words_give_both_dot_products(n):
    """NN_CHANNEL_PAIR(a0, b0, a1, b1) words: SMLAD with SXTB16(w) sums x . wA, SMLAD with w
    sums x . wA + 256 x . wB (mod 2^32); x . wB comes back exactly, extremes included."""
    rng = np.random.default_rng(n)
    out = 8
    weights = rng.integers(-127, 128, size=(out, n)).astype(np.int64)
    weights[0] = -127
    weights[1] = 127 if n <= 200 else 60  # B channels: 256 * |2x . wB| must stay below 2^31
    bias = rng.integers(-5000, 5000, size=out).astype(np.int64)
    mult = np.full(out, 1 << 30)
    params, arrays = layouts.fc_pairs(weights.astype(np.int8), bias, mult, np.full(out, -8), 0, block_max=2)
    quads = dict((name, data) for _, name, data, _ in arrays)["weights"]
    # NN_CHANNEL_PAIR as the C macro builds it: int16 halves a + 256 b
    lo = (quads[:, 0] + 256 * quads[:, 1]) & 0xFFFF
    hi = (quads[:, 2] + 256 * quads[:, 3]) & 0xFFFF
    words = (
        (lo | (hi << 16)).astype(np.int64).reshape(out // (2 * params["block"]), params["in_words"], params["block"])
    )
    for x in (rng.integers(-128, 128, size=n), np.full(n, -128), np.full(n, 127)):
        x2 = np.zeros(2 * params["in_words"], np.int64)
        x2[:n] = 2 * x  # widened and doubled
        x_lo, x_hi = x2[0::2], x2[1::2]
        for blk in range(words.shape[0]):
            for k in range(params["block"]):
                w = words[blk, :, k]
                a_lo, a_hi = sxtb16(w)
                h_lo, h_hi = halves(w)
                acc_a = int((x_lo * a_lo + x_hi * a_hi).sum())
                acc_w = int((x_lo * h_lo + x_hi * h_hi).sum())
                diff = ((acc_w - acc_a + (1 << 31)) % (1 << 32)) - (1 << 31)  # int32 wrap-around, as on the chip
                a, b = 2 * (blk * params["block"] + k), 2 * (blk * params["block"] + k) + 1
                assert acc_a == 2 * int(x @ weights[a])
                assert diff >> 8 == 2 * int(x @ weights[b])
