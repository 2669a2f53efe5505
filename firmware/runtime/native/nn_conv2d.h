/* nn_conv2d.h: CONV_2D, with TANH and AVERAGE_POOL_2D fused when they follow.
 */
#ifndef NN_CONV2D_H
#define NN_CONV2D_H

#include "nn_common.h"

/* CONV_2D (VALID padding, NHWC input, OHWI filter), optionally followed by an
   element-wise table (TANH) and a non-overlapping AVERAGE_POOL_2D. */
typedef struct {
    int in_w, in_c;         /* input width and depth (height is implied) */
    int filter_h, filter_w; /* kernel size */
    int stride_h, stride_w;
    int conv_out_h, conv_out_w; /* convolution output before pooling */
    int out_c;                  /* output channels */
    const int8_t *filter;       /* [out_c][filter_h][filter_w][in_c] */
    const int32_t *bias;        /* [out_c], input zero point folded in */
    const int32_t *multiplier;  /* [out_c] per-channel requantization */
    const int32_t *shift;       /* [out_c] */
    int32_t max_shift;          /* largest of shift[] (<= 0: right shifts only) */
    int32_t out_zero_point;
    int32_t act_min, act_max; /* fused activation range of the conv */
    const int8_t *lut;        /* NULL or 256 entries indexed by value + 128 */
    int pool_h, pool_w;       /* 1, 1 when no pooling is fused */
    int32_t pool_act_min, pool_act_max;
    int block;     /* output channels per pass (divides out_c, <= NN_MAX_BLOCK) */
    int patch_len; /* 0: direct kernel; else im2col: filter is [out_c][patch_len],
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
        v[k] = nn_output_stage(acc[k], p->multiplier[oc + k], p->shift[oc + k], p->max_shift,
                               p->out_zero_point, p->act_min, p->act_max, p->lut);
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
                    const int8_t *in_row =
                        input + ((oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_c;
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
                            sums[oc + k] +=
                                nn_output_stage(acc[k], p->multiplier[oc + k], p->shift[oc + k], p->max_shift,
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

#endif /* NN_CONV2D_H */
