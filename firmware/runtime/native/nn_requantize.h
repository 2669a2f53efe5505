/* nn_requantize.h: tflite::MultiplyByQuantizedMultiplier in one multiply (SMMLAR).
 *
 * TFLM (built without TFLITE_SINGLE_ROUNDING) requantizes an accumulator with
 * two roundings: t = SaturatingRoundingDoublingHighMul(acc, M), which is
 * floor(acc * M / 2^31 + 1/2), then RoundingDivideByPOT(t, r), which rounds
 * t / 2^r half away from zero: floor((t + 2^(r-1) - [t < 0]) / 2^r).
 * Because floor(floor(a) / n) == floor(a / n) for a whole n, both roundings
 * and the zero point fold into one rounding multiply-accumulate:
 *
 *   y + zero_point = SMMLAR(2 * acc, M, offset - [acc < 0]) >> r
 *   SMMLAR(a, b, c) = floor((c * 2^32 + a * b + 2^31) / 2^32)
 *   offset = 2^(r-1) + zero_point * 2^r
 *
 * ([t < 0] equals [acc < 0] since QuantizeMultiplier makes M >= 2^30; the one
 * exception, acc = -1 with M = 2^30, gives the same y either way.) The
 * accumulator arrives doubled: codegen doubles the weights or the widened
 * inputs, so 2 * acc costs nothing, and codegen checks r >= 1 and that
 * 2 * acc fits in int32 for every possible input. tests/ compare this with
 * TFLM's two-step form for every reachable accumulator.
 */
#ifndef NN_REQUANTIZE_H
#define NN_REQUANTIZE_H

#include "nn_common.h"

/* (SMMLAR(acc2, multiplier, offset - [acc2 < 0]) >> right_shift: the requantized value
   with the output zero point added, before clamping. */
static inline int32_t nn_requantize_doubled(int32_t acc2, int32_t multiplier, int32_t offset, int right_shift)
{
    const int32_t accumulate = offset + (acc2 >> 31); /* acc2 >> 31 is -1 for a negative accumulator */
#if NN_USE_SIMD
    int32_t u;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(u) : "r"(acc2), "r"(multiplier), "r"(accumulate));
#else
    const int64_t sum = (int64_t)acc2 * multiplier + (int64_t)INT64_C(0x80000000) +
                        (int64_t)accumulate * INT64_C(0x100000000);
    const int32_t u = (int32_t)(sum >> 32);
#endif
    return u >> right_shift;
}

#endif /* NN_REQUANTIZE_H */
