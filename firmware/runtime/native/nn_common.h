/* nn_common.h: what every int8 kernel of the native (interpreter-free) runtime shares.
 *
 * Every kernel reproduces the TensorFlow Lite Micro reference kernel bit for
 * bit (tensorflow/lite/kernels/internal/reference/...), with the model's
 * constants prepared by `lenet-mcu codegen` (lenet_mcu/codegen/native/):
 *
 *  - CONV_2D / FULLY_CONNECTED: int32 accumulation, per-channel requantization
 *    with MultiplyByQuantizedMultiplier in its double-rounding form (TFLM is
 *    built without TFLITE_SINGLE_ROUNDING). The input zero-point term
 *    -zp_in * sum(w) is folded into the bias at codegen time, which is exact
 *    because every tap reads a real input value (VALID padding only).
 *  - TANH (and any other element-wise int8 op): a 256-entry table computed on
 *    the host by the TFLM kernel itself, applied in the conv/FC epilogue.
 *  - AVERAGE_POOL_2D: sum, then division by the tap count rounded half away
 *    from zero, exactly as reference_integer_ops::AveragePool; it may be fused
 *    into the convolution that feeds it (stride == filter size), so the conv
 *    output never needs a buffer.
 *
 * The layer kernels are always-inline and take a pointer to a static const
 * parameter block: gcc inlines each call in the generated infer() and folds
 * the shapes into compile-time loop bounds. Convolutions and fully connected
 * layers compute a block of output channels per pass over the input (each
 * input word is loaded and widened once per block); a convolution with more
 * than one position first gathers each position's taps into a word-padded
 * patch (im2col), so the dot products have no per-row remainders.
 *
 * On Cortex-M4/M7 (__ARM_FEATURE_DSP) dot products use SXTB16 + SMLAD, two
 * 16x16 MACs per instruction; the portable C path gives identical sums.
 *
 * The requantization helpers are ported from TensorFlow Lite Micro and
 * gemmlowp, Apache License 2.0 (see NOTICE).
 */
#ifndef NN_COMMON_H
#define NN_COMMON_H

#include <stdint.h>
#include <string.h>

#if (defined(__ARM_FEATURE_DSP) || defined(__ARM_FEATURE_SAT)) && !defined(NN_NO_SIMD)
#include <arm_acle.h> /* __ssat: Cortex-M3 has saturation but not the DSP extension */
#endif
#if defined(__ARM_FEATURE_DSP) && !defined(NN_NO_SIMD)
#define NN_USE_SIMD 1
#else
#define NN_USE_SIMD 0
#endif

/* Layer kernels are inlined into each call so their loop bounds become constants. */
#if defined(__GNUC__)
#define NN_INLINE   static inline __attribute__((always_inline))
#define NN_NOINLINE __attribute__((noinline))
#else
#define NN_INLINE static inline
#define NN_NOINLINE
#endif

/* ------------------------------------------------------------ fixed point */

/* gemmlowp::SaturatingRoundingDoublingHighMul for int32 (ARM VQRDMULH). */
static inline int32_t nn_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudged = ab + (ab >= 0 ? (1 << 30) : (1 - (1 << 30)));
    /* C division truncates toward zero: add 2^31-1 to negatives before the shift */
    return (int32_t)((nudged + (nudged < 0 ? INT64_C(0x7FFFFFFF) : 0)) >> 31);
}

/* gemmlowp::RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t nn_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((UINT32_C(1) << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32 x, multiplier, shift), double rounding.
   QuantizeMultiplier only makes multipliers in [0, 2^31 - 1], so the INT32_MIN * INT32_MIN
   saturation case of SaturatingRoundingDoublingHighMul cannot occur and is skipped. */
static inline int32_t nn_requantize(int32_t acc, int32_t multiplier, int32_t shift)
{
    const int left_shift = shift > 0 ? (int)shift : 0;
    const int right_shift = shift > 0 ? 0 : (int)-shift;
    /* TFLM computes x * (1 << left_shift) in int32; do it wrap-around like the hardware */
    const int32_t shifted = (int32_t)((uint32_t)acc << left_shift);
    const int64_t ab = (int64_t)shifted * (int64_t)multiplier;
    const int64_t nudged = ab + (ab >= 0 ? (1 << 30) : (1 - (1 << 30)));
    const int32_t high = (int32_t)((nudged + (nudged < 0 ? INT64_C(0x7FFFFFFF) : 0)) >> 31);
    return nn_rounding_divide_by_pot(high, right_shift);
}

static inline int32_t nn_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Round-half-away-from-zero division of reference_integer_ops::AveragePool. */
static inline int32_t nn_rounded_average(int32_t sum, int32_t count)
{
    return sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
}

/* --------------------------------------------------------------- dot product */

static inline uint32_t nn_read_u32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* one (unaligned-capable) LDR on Cortex-M4 */
    return v;
}

#if NN_USE_SIMD
/* bytes 1 and 3 of v sign-extended to two int16 lanes (SXTB16 with ROR #8) */
static inline uint32_t nn_sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
#endif

/* Up to NN_MAX_BLOCK dot products sharing the input x: acc[k] += x . w[k * w_stride ...]
   for k < count (a compile-time constant once inlined): each input word is loaded and
   widened once for all `count` output channels. */
#define NN_MAX_BLOCK    6
#define NN_MAX_CHANNELS 64 /* output channels of an im2col convolution (codegen checks) */
NN_INLINE void nn_dot_block_s8(const int8_t *x, const int8_t *w, int w_stride, int n, int count, int32_t *acc)
{
    /* local copies: int8 loads may alias acc[] as far as C is concerned, which would
       force a store of every accumulator on each iteration */
    int32_t a[NN_MAX_BLOCK];
#pragma GCC unroll 6
    for (int k = 0; k < count; ++k) {
        a[k] = acc[k];
    }
    int i = 0;
#if NN_USE_SIMD
    /* SXTB16 widens bytes 0,2 (and, after ROR 8, bytes 1,3) to int16 pairs; input
       and weights are split the same way, so SMLAD multiplies matching elements. */
    for (; i + 4 <= n; i += 4) {
        const uint32_t vx = nn_read_u32(x + i);
        const uint32_t x02 = __sxtb16(vx);
        const uint32_t x13 = nn_sxtb16_ror8(vx);
#pragma GCC unroll 6
        for (int k = 0; k < count; ++k) {
            const uint32_t vw = nn_read_u32(w + k * w_stride + i);
            a[k] = __smlad(x02, __sxtb16(vw), a[k]);
            a[k] = __smlad(x13, nn_sxtb16_ror8(vw), a[k]);
        }
    }
#endif
    for (; i < n; ++i) {
        const int32_t xv = x[i];
#pragma GCC unroll 6
        for (int k = 0; k < count; ++k) {
            a[k] += xv * (int32_t)w[k * w_stride + i];
        }
    }
#pragma GCC unroll 6
    for (int k = 0; k < count; ++k) {
        acc[k] = a[k];
    }
}

/* requantize, add the zero point, clamp, then the optional element-wise table */
/* max_shift (the largest shift of the layer, a compile-time constant) <= 0 means no
   channel shifts left: the left-shift path then compiles away. */
NN_INLINE int32_t nn_output_stage(int32_t acc, int32_t multiplier, int32_t shift, int32_t max_shift,
                                  int32_t zero_point, int32_t act_min, int32_t act_max, const int8_t *lut)
{
    int32_t v;
    if (max_shift <= 0) {
        const int64_t ab = (int64_t)acc * (int64_t)multiplier;
        const int64_t nudged = ab + (ab >= 0 ? (1 << 30) : (1 - (1 << 30)));
        const int32_t high = (int32_t)((nudged + (nudged < 0 ? INT64_C(0x7FFFFFFF) : 0)) >> 31);
        v = nn_rounding_divide_by_pot(high, (int)-shift);
    } else {
        v = nn_requantize(acc, multiplier, shift);
    }
    v += zero_point;
#if defined(__ARM_FEATURE_SAT) && !defined(NN_NO_SIMD)
    if (act_min == -128 && act_max == 127) {
        v = __ssat(v, 8); /* one instruction for the full int8 range */
    } else {
        v = nn_clamp(v, act_min, act_max);
    }
#else
    v = nn_clamp(v, act_min, act_max);
#endif
    if (lut != 0) {
        v = lut[v + 128];
    }
    return v;
}

/* ------------------------------------------------------------ int16 operands */

/* Weights laid out at codegen: two int16 values in one word, low half first. */
#define NN_PAIR(lo, hi) ((uint32_t)(uint16_t)(int16_t)(lo) | ((uint32_t)(uint16_t)(int16_t)(hi) << 16))
/* Two int8 channels A, B at two taps in one word (nn_fully_connected_pairs.h). */
#define NN_CHANNEL_PAIR(a0, b0, a1, b1) NN_PAIR((a0) + 256 * (b0), (a1) + 256 * (b1))

/* Two int16 values as one word (low half: p[0]); LDR on Cortex-M4, which allows
   unaligned word loads, element loads elsewhere. */
static inline uint32_t nn_read_pair(const int16_t *p)
{
#if NN_USE_SIMD
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
#else
    return (uint32_t)(uint16_t)p[0] | ((uint32_t)(uint16_t)p[1] << 16);
#endif
}

/* acc + lo(x) * lo(w) + hi(x) * hi(w) on int16 halves: SMLAD. The asm keeps the
   accumulator in its register (gcc's own __smlad lets the register allocator
   move accumulators around in long unrolled blocks). */
static inline int32_t nn_smlad(uint32_t x, uint32_t w, int32_t acc)
{
#if NN_USE_SIMD
    __asm__("smlad %0, %1, %2, %0" : "+r"(acc) : "r"(x), "r"(w));
    return acc;
#else
    const int32_t lo = (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu) * (int32_t)(int16_t)(uint16_t)(w & 0xFFFFu);
    const int32_t hi = (int32_t)(int16_t)(uint16_t)(x >> 16) * (int32_t)(int16_t)(uint16_t)(w >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi); /* wraps like SMLAD */
#endif
}

/* Clamp to [lo, hi] within int8: one SSAT when the range is all of int8. */
static inline int32_t nn_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_SAT) && !defined(NN_NO_SIMD)
    if (lo == -128 && hi == 127) {
        return __ssat(v, 8);
    }
#endif
    return nn_clamp(v, lo, hi);
}

/* nn_rounded_average for a power-of-two count: a shift, rounding half away from zero. */
static inline int32_t nn_pool_average(int32_t sum, int32_t count)
{
    if (count == 1) {
        return sum;
    }
    if ((count & (count - 1)) == 0) {
        int k = 0;
        while ((1 << k) < count) {
            ++k;
        }
        return (sum + (count >> 1) + (sum >> 31)) >> k;
    }
    return nn_rounded_average(sum, count);
}

/* int8 -> int16, each value multiplied by `scale` (1, or 2 for a doubled operand).
   On Cortex-M4: four values per word load, SXTB16 splits even and odd bytes, PKHBT /
   PKHTB put them back in order. */
static inline void nn_widen_s8_s16(const int8_t *in, int16_t *out, int n, int scale)
{
    int i = 0;
#if NN_USE_SIMD
    for (; i + 4 <= n; i += 4) {
        uint32_t even = __sxtb16(nn_read_u32(in + i));
        uint32_t odd = nn_sxtb16_ror8(nn_read_u32(in + i));
        if (scale == 2) {
            even = __sadd16(even, even);
            odd = __sadd16(odd, odd);
        }
        uint32_t lo, hi;
        __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(lo) : "r"(even), "r"(odd));
        __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(hi) : "r"(odd), "r"(even));
        memcpy(out + i, &lo, sizeof lo);
        memcpy(out + i + 2, &hi, sizeof hi);
    }
#endif
    for (; i < n; ++i) {
        out[i] = (int16_t)(in[i] * scale);
    }
}

#endif /* NN_COMMON_H */
