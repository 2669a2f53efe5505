"""Weights laid out for the fast kernels, and the checks that keep them exact.

Each function returns None when the fast kernel cannot run the layer bit-exactly
(the lowering then keeps the general kernel), else (params, arrays) for the C:
  - conv_s16:  nn_conv2d_s16.h, int16 doubled filter pairs in SMLAD order
  - fc_pairs:  nn_fully_connected_pairs.h, two output channels per weight word
Both requantize with nn_requantize.h's one-multiply form; requantize_constants()
checks its preconditions, the bounds checks make sure no sum can overflow.
"""

from __future__ import annotations

import numpy as np

INT32_LIMIT = 1 << 31


def requantize_constants(mult: np.ndarray, shift: np.ndarray, zero_point: int):
    """(offset[], right_shift[]) for nn_requantize_doubled, or None when a channel needs TFLM's
    general form (a left shift, no right shift, or a flushed multiplier)."""
    if np.any(shift > -1) or np.any(mult < (1 << 30)):
        return None
    r = (-shift).astype(np.int64)
    offset = (np.int64(1) << (r - 1)) + (np.int64(zero_point) << r)
    if np.any(np.abs(offset) >= INT32_LIMIT - 1):
        return None
    return offset, r


def accumulator_bound(bias: np.ndarray, weights_2d: np.ndarray) -> np.ndarray:
    """Largest |bias + sum(w * x)| per channel over all int8 inputs x (|x| <= 128)."""
    return np.abs(bias.astype(np.int64)) + 128 * np.abs(weights_2d.astype(np.int64)).sum(axis=1)


def requant_fields(mult: np.ndarray, offset: np.ndarray, r: np.ndarray) -> tuple[dict, list]:
    """The per-channel (M, offset, r) triples, and r as a constant when every channel shares it."""
    triples = np.stack([mult, offset, r], axis=1)
    return (
        {"shift_all": int(r[0]) if np.all(r == r[0]) else 0},
        [
            (
                "int32_t",
                "requant",
                triples,
                "per channel: multiplier M (Q31), offset 2^(r-1) + output zero point * 2^r, r",
            )
        ],
    )


def conv_s16(
    weights: np.ndarray,
    bias: np.ndarray,
    mult: np.ndarray,
    shift: np.ndarray,
    zero_point: int,
    stride: tuple[int, int],
    pool: tuple[int, int],
    block_max: int = 4,
):
    """weights: int8 [oc][kh][kw][ic]; bias: folded int64 [oc]."""
    oc, kh, kw, ic = weights.shape
    if stride != (1, 1) or pool[1] not in (1, 2):
        return None
    consts = requantize_constants(mult, shift, zero_point)
    if consts is None or np.any(2 * accumulator_bound(bias, weights.reshape(oc, -1)) >= INT32_LIMIT):
        return None
    offset, r = consts
    taps = kw * ic
    shift_params, shift_arrays = requant_fields(mult, offset, r)
    if ic % 2 and pool == (2, 2):
        # nn_conv2d_s16_row_quad: the window's odd column reads the even column's words with
        # the filter shifted by ic taps, so both variants sit side by side
        block = 2 if oc % 2 == 0 else 1
        row_words = (taps + ic + 1) // 2
        rows = np.zeros((oc, kh, 2, 2 * row_words), np.int64)
        w2 = 2 * weights.reshape(oc, kh, taps).astype(np.int64)  # doubled: nn_requantize.h
        rows[:, :, 0, :taps] = w2
        rows[:, :, 1, ic : ic + taps] = w2
        # [oc / block][kh][row_words][block][variant] pairs
        pairs = rows.reshape(oc // block, block, kh, 2, row_words, 2).transpose(0, 2, 4, 1, 3, 5)
        layout = (
            f"[{oc // block}][{kh}][{row_words}][{block}][2] int16 pairs (2 taps of a filter row) x {block} "
            f"channels x (filter, filter shifted by {ic} taps), weights doubled"
        )
        params = {"row_words": row_words, "block": block, "quad": 1, **shift_params}
    else:
        block = max(b for b in range(1, block_max + 1) if oc % b == 0)
        row_words = (taps + 1) // 2
        rows = np.zeros((oc, kh, 2 * row_words), np.int64)
        rows[:, :, :taps] = 2 * weights.reshape(oc, kh, taps).astype(np.int64)  # doubled: nn_requantize.h
        # [oc / block][kh][row_words][block] pairs: a pass reads one word per channel per step
        pairs = rows.reshape(oc // block, block, kh, row_words, 2).transpose(0, 2, 3, 1, 4)
        layout = (
            f"[{oc // block}][{kh}][{row_words}][{block}] int16 pairs (2 taps of a filter row) x {block} "
            "channels, weights doubled"
            + (f", rows zero-padded from {taps} to {2 * row_words} taps" if taps % 2 else "")
        )
        params = {"row_words": row_words, "block": block, "quad": 0, **shift_params}
    arrays = [
        ("pairs", "filter", pairs.reshape(-1, 2), layout),
        ("int32_t", "bias", 2 * bias, "2 * (bias - input zero point * sum(filter))"),
        *shift_arrays,
    ]
    return params, arrays


def filter_for_pair_planes(pairs: np.ndarray, oc: int, block: int, kh: int, kw: int, planes: int) -> np.ndarray:
    """conv_s16 filter words reordered for an input in channel-pair planes: [kx][plane] -> [plane][kx]."""
    w = pairs.reshape(oc // block, kh, kw, planes, block, 2)
    return w.transpose(0, 1, 3, 2, 4, 5).reshape(-1, 2)


def fc_pairs(
    weights: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, zero_point: int, block_max: int = 4
):
    """weights: int8 [out][in]; bias: folded int64 [out]."""
    out, n = weights.shape
    if out % 2 or weights.min() < -127:
        return None
    consts = requantize_constants(mult, shift, zero_point)
    if consts is None or np.any(2 * accumulator_bound(bias, weights) >= INT32_LIMIT):
        return None
    # accW - accA = 256 * (2x . wB) must stay below 2^31 in magnitude for every input
    if np.any(256 * 2 * 128 * np.abs(weights[1::2].astype(np.int64)).sum(axis=1) >= INT32_LIMIT):
        return None
    offset, r = consts
    pairs = out // 2
    block = max(b for b in range(1, block_max + 1) if pairs % b == 0)
    in_words = (n + 1) // 2
    w = np.zeros((out, 2 * in_words), np.int64)
    w[:, :n] = weights
    a, b = w[0::2], w[1::2]  # [pairs][taps]
    quads = np.stack([a[:, 0::2], b[:, 0::2], a[:, 1::2], b[:, 1::2]], axis=-1)  # [pairs][in_words][4]
    quads = quads.reshape(pairs // block, block, in_words, 4).transpose(0, 2, 1, 3)
    shift_params, shift_arrays = requant_fields(mult, offset, r)
    params = {"in_words": in_words, "block": block, **shift_params}
    arrays = [
        (
            "quads",
            "weights",
            quads.reshape(-1, 4),
            f"[{pairs // block}][{in_words}][{block}] words: channels A = 2p, B = 2p + 1 at taps i, i + 1",
        ),
        ("int32_t", "bias", 2 * bias, "2 * (bias - input zero point * sum(weights))"),
        *shift_arrays,
    ]
    return params, arrays
