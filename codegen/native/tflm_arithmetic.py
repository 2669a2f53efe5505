"""TFLite Micro's integer arithmetic, reproduced for the constants the native kernels use.

Everything here follows TFLM's Prepare() code exactly:
  - QuantizeMultiplier: frexp, round half away from zero, the q == 2^31 fix,
    flush below 2^-31 to zero (TFLM builds without TFLITE_SINGLE_ROUNDING)
  - conv / per-channel FC multiplier: double(s_in) * double(s_w[c]) / double(s_out);
    per-tensor FC: the product s_in * s_w taken in float32 first
  - fused activation ranges: Quantize() in float32, round half away from zero
  - SOFTMAX: PreprocessSoftmaxScaling and CalculateInputRadius with 5 integer bits
`multiply_by_quantized_multiplier` is the run-time side, in numpy, for tests and proofs.
Ported from TensorFlow Lite Micro, Apache License 2.0 (see NOTICE).
"""

from __future__ import annotations

import math

import numpy as np

from lenet_mcu.errors import LenetMcuError

INT8_MIN, INT8_MAX = -128, 127
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier -> (int32 multiplier, shift); shift > 0 is a left shift."""
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise LenetMcuError(f"requantization multiplier {real_multiplier!r} cannot be represented")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if q_fixed < 0:
        raise LenetMcuError(f"negative requantization multiplier {real_multiplier!r} (negative scale)")
    return int(q_fixed), int(shift)


def requantization(
    input_scale: float, weight_scales: np.ndarray, output_scale: float, channels: int, per_tensor_float_product: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) arrays as TFLM's conv / fully connected Prepare() makes them
    (a per-tensor weight scale is repeated for every channel)."""
    mult = np.zeros(channels, np.int64)
    shift = np.zeros(channels, np.int64)
    for i in range(channels):
        if per_tensor_float_product:  # GetQuantizedConvolutionMultipler: the product in float32
            real = float(np.float32(input_scale) * np.float32(weight_scales[i % weight_scales.size])) / float(
                output_scale
            )
        else:
            real = float(input_scale) * float(weight_scales[i % weight_scales.size]) / float(output_scale)
        mult[i], shift[i] = quantize_multiplier(real)
    return mult, shift


def multiply_by_quantized_multiplier(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier (double rounding) on an int64 array of int32 values."""
    acc = np.asarray(acc, np.int64)
    left = max(shift, 0)
    right = max(-shift, 0)
    x = ((acc << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap-around, as the C code
    ab = x * multiplier
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged < 0, -((-nudged) >> 31), nudged >> 31)  # division truncating toward zero
    if right == 0:
        return high
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def quantize_float(scale: float, zero_point: int, value: float) -> int:
    """tflite::Quantize used by CalculateActivationRangeQuantized (float32 division)."""
    tmp = float(np.float32(np.float32(value) / np.float32(scale)))
    return zero_point + round_half_away(tmp)


def activation_range(activation: str, scale: float, zero_point: int, where: str) -> tuple[int, int]:
    lo, hi = INT8_MIN, INT8_MAX
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quantize_float(scale, zero_point, 0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize_float(scale, zero_point, 0.0)), min(hi, quantize_float(scale, zero_point, 6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize_float(scale, zero_point, -1.0)), min(hi, quantize_float(scale, zero_point, 1.0))
    raise LenetMcuError(
        f"{where}: fused activation {activation} is not supported (supported: {', '.join(ACTIVATIONS)})"
    )


def softmax_params(beta: float, input_scale: float) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius for int8 (5 integer bits)."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * float(1 << (31 - integer_bits)), float((1 << 31) - 1))
    if not real > 1.0:
        raise LenetMcuError(f"softmax input multiplier {real!r} is not greater than one (input scale too small)")
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise LenetMcuError(f"softmax input multiplier {real!r} gives a negative left shift")
    max_input_rescaled = 1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift)
    diff_min = -int(math.floor(max_input_rescaled))
    return multiplier, left_shift, diff_min
