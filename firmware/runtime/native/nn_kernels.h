/* nn_kernels.h: int8 kernels of the native (interpreter-free) runtime.
 *
 * Every kernel reproduces the TensorFlow Lite Micro reference kernel bit for
 * bit (tensorflow/lite/kernels/internal/reference/...), with the model's
 * constants prepared by `lenet-mcu codegen` (lenet_mcu/codegen/native.py):
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
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

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
#define NN_INLINE static inline __attribute__((always_inline))
#else
#define NN_INLINE static inline
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
#define NN_MAX_BLOCK 6
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

/* ---------------------------------------------------------------- layers */

/* CONV_2D (VALID padding, NHWC input, OHWI filter), optionally followed by an
   element-wise table (TANH) and a non-overlapping AVERAGE_POOL_2D. */
typedef struct {
    int in_w, in_c;                  /* input width and depth (height is implied) */
    int filter_h, filter_w;          /* kernel size */
    int stride_h, stride_w;
    int conv_out_h, conv_out_w;      /* convolution output before pooling */
    int out_c;                       /* output channels */
    const int8_t *filter;            /* [out_c][filter_h][filter_w][in_c] */
    const int32_t *bias;             /* [out_c], input zero point folded in */
    const int32_t *multiplier;       /* [out_c] per-channel requantization */
    const int32_t *shift;            /* [out_c] */
    int32_t max_shift;               /* largest of shift[] (<= 0: right shifts only) */
    int32_t out_zero_point;
    int32_t act_min, act_max;        /* fused activation range of the conv */
    const int8_t *lut;               /* NULL or 256 entries indexed by value + 128 */
    int pool_h, pool_w;              /* 1, 1 when no pooling is fused */
    int32_t pool_act_min, pool_act_max;
    int block;                       /* output channels per pass (divides out_c, <= NN_MAX_BLOCK) */
    int patch_len;                   /* 0: direct kernel; else im2col: filter is [out_c][patch_len],
                                        the filter_h * filter_w * in_c taps zero-padded to a multiple of 4 */
} nn_conv_params;

/* Output channels oc .. oc + block - 1 at conv position (oy, ox). */
NN_INLINE void nn_conv_block(const nn_conv_params *p, const int8_t *input, int oy, int ox, int oc, int32_t *v)
{
    const int row_len = p->filter_w * p->in_c; /* one filter row is contiguous in NHWC */
    const int filter_len = p->filter_h * row_len;
    const int8_t *in_row = input + ((oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_c;
    const int8_t *f_row = p->filter + oc * filter_len;
    int32_t acc[NN_MAX_BLOCK];
    for (int k = 0; k < p->block; ++k) {
        acc[k] = p->bias[oc + k];
    }
    for (int ky = 0; ky < p->filter_h; ++ky) {
        nn_dot_block_s8(in_row, f_row, filter_len, row_len, p->block, acc);
        in_row += p->in_w * p->in_c;
        f_row += row_len;
    }
    for (int k = 0; k < p->block; ++k) {
        v[k] = nn_output_stage(acc[k], p->multiplier[oc + k], p->shift[oc + k], p->max_shift, p->out_zero_point,
                               p->act_min, p->act_max, p->lut);
    }
}

/* im2col variant: the taps of one conv position are copied row by row into `patch`
   (patch_len bytes, a multiple of 4, zero tail), so every output channel is one
   run of whole words with no per-row remainder; the filter is padded to match. */
NN_INLINE void nn_conv2d_patch_s8(const nn_conv_params *p, const int8_t *input, int8_t *output, int8_t *patch)
{
    const int out_h = p->conv_out_h / p->pool_h;
    const int out_w = p->conv_out_w / p->pool_w;
    const int32_t count = p->pool_h * p->pool_w;
    const int row_len = p->filter_w * p->in_c;
    const int taps = p->filter_h * row_len;
    for (int i = taps; i < p->patch_len; ++i) {
        patch[i] = 0; /* the padding never changes: its weights are zero too */
    }
    for (int y = 0; y < out_h; ++y) {
        for (int x = 0; x < out_w; ++x) {
            int32_t sums[NN_MAX_CHANNELS];
            for (int oc = 0; oc < p->out_c; ++oc) {
                sums[oc] = 0;
            }
            for (int py = 0; py < p->pool_h; ++py) {
                for (int px = 0; px < p->pool_w; ++px) {
                    const int oy = y * p->pool_h + py;
                    const int ox = x * p->pool_w + px;
                    const int8_t *in_row = input + ((oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_c;
                    for (int ky = 0; ky < p->filter_h; ++ky) {
                        memcpy(patch + ky * row_len, in_row, (size_t)row_len);
                        in_row += p->in_w * p->in_c;
                    }
                    for (int oc = 0; oc < p->out_c; oc += p->block) {
                        int32_t acc[NN_MAX_BLOCK];
                        for (int k = 0; k < p->block; ++k) {
                            acc[k] = p->bias[oc + k];
                        }
                        nn_dot_block_s8(patch, p->filter + oc * p->patch_len, p->patch_len, p->patch_len,
                                        p->block, acc);
                        for (int k = 0; k < p->block; ++k) {
                            sums[oc + k] += nn_output_stage(acc[k], p->multiplier[oc + k], p->shift[oc + k], p->max_shift,
                                                            p->out_zero_point, p->act_min, p->act_max, p->lut);
                        }
                    }
                }
            }
            int8_t *out = output + (y * out_w + x) * p->out_c;
            for (int oc = 0; oc < p->out_c; ++oc) {
                int32_t r = sums[oc];
                if (count > 1) { /* fused AVERAGE_POOL_2D */
                    r = nn_clamp(nn_rounded_average(r, count), p->pool_act_min, p->pool_act_max);
                }
                out[oc] = (int8_t)r;
            }
        }
    }
}

NN_INLINE void nn_conv2d_s8(const nn_conv_params *p, const int8_t *input, int8_t *output)
{
    const int out_h = p->conv_out_h / p->pool_h;
    const int out_w = p->conv_out_w / p->pool_w;
    const int32_t count = p->pool_h * p->pool_w;
    for (int y = 0; y < out_h; ++y) {
        for (int x = 0; x < out_w; ++x) {
            int8_t *out = output + (y * out_w + x) * p->out_c;
            for (int oc = 0; oc < p->out_c; oc += p->block) {
                int32_t sums[NN_MAX_BLOCK] = {0};
                for (int py = 0; py < p->pool_h; ++py) {
                    for (int px = 0; px < p->pool_w; ++px) {
                        int32_t v[NN_MAX_BLOCK];
                        nn_conv_block(p, input, y * p->pool_h + py, x * p->pool_w + px, oc, v);
                        for (int k = 0; k < p->block; ++k) {
                            sums[k] += v[k];
                        }
                    }
                }
                for (int k = 0; k < p->block; ++k) {
                    int32_t r = sums[k];
                    if (count > 1) { /* fused AVERAGE_POOL_2D */
                        r = nn_clamp(nn_rounded_average(r, count), p->pool_act_min, p->pool_act_max);
                    }
                    out[oc + k] = (int8_t)r;
                }
            }
        }
    }
}

/* FULLY_CONNECTED: output[b][o] = requant(bias[o] + sum_i w[o][i] * in[b][i]). */
typedef struct {
    int batches, in_features, out_features;
    const int8_t *weights;           /* [out_features][in_features] */
    const int32_t *bias;             /* input zero point folded in */
    const int32_t *multiplier;       /* [out_features] (per-tensor models repeat one value) */
    const int32_t *shift;
    int32_t max_shift;               /* largest of shift[] (<= 0: right shifts only) */
    int32_t out_zero_point;
    int32_t act_min, act_max;
    const int8_t *lut;               /* NULL or 256 entries indexed by value + 128 */
    int block;                       /* outputs per pass (divides out_features, <= NN_MAX_BLOCK) */
} nn_fc_params;

NN_INLINE void nn_fully_connected_s8(const nn_fc_params *p, const int8_t *input, int8_t *output)
{
    for (int b = 0; b < p->batches; ++b) {
        for (int o = 0; o < p->out_features; o += p->block) {
            int32_t acc[NN_MAX_BLOCK];
            for (int k = 0; k < p->block; ++k) {
                acc[k] = p->bias[o + k];
            }
            nn_dot_block_s8(input, p->weights + o * p->in_features, p->in_features, p->in_features, p->block, acc);
            for (int k = 0; k < p->block; ++k) {
                output[o + k] = (int8_t)nn_output_stage(acc[k], p->multiplier[o + k], p->shift[o + k], p->max_shift,
                                                        p->out_zero_point, p->act_min, p->act_max, p->lut);
            }
        }
        input += p->in_features;
        output += p->out_features;
    }
}

/* AVERAGE_POOL_2D (any padding/stride): reference_integer_ops::AveragePool. */
typedef struct {
    int in_h, in_w, channels;
    int filter_h, filter_w, stride_h, stride_w;
    int pad_h, pad_w;                /* top/left padding (SAME) */
    int out_h, out_w;
    int32_t act_min, act_max;
} nn_pool_params;

NN_INLINE void nn_avg_pool_s8(const nn_pool_params *p, const int8_t *input, int8_t *output)
{
    for (int oy = 0; oy < p->out_h; ++oy) {
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int y0 = oy * p->stride_h - p->pad_h;
            const int x0 = ox * p->stride_w - p->pad_w;
            const int fy0 = y0 < 0 ? -y0 : 0;
            const int fx0 = x0 < 0 ? -x0 : 0;
            const int fy1 = p->filter_h < p->in_h - y0 ? p->filter_h : p->in_h - y0;
            const int fx1 = p->filter_w < p->in_w - x0 ? p->filter_w : p->in_w - x0;
            for (int c = 0; c < p->channels; ++c) {
                int32_t sum = 0;
                int32_t count = 0;
                for (int fy = fy0; fy < fy1; ++fy) {
                    for (int fx = fx0; fx < fx1; ++fx) {
                        sum += input[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                        ++count;
                    }
                }
                /* codegen guarantees count > 0 (TFLM would fail the op otherwise) */
                *output++ = (int8_t)nn_clamp(nn_rounded_average(sum, count), p->act_min, p->act_max);
            }
        }
    }
}

/* Element-wise int8 op through its 256-entry table (indexed by value + 128). */
NN_INLINE void nn_lut_s8(const int8_t *lut, const int8_t *input, int8_t *output, int count)
{
    for (int i = 0; i < count; ++i) {
        output[i] = lut[input[i] + 128];
    }
}

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128):
   reference_ops::Softmax with gemmlowp fixed point. In nn_kernels.c. */
typedef struct {
    int outer, depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} nn_softmax_params;

void nn_softmax_s8(const nn_softmax_params *p, const int8_t *input, int8_t *output);

#endif /* NN_KERNELS_H */
