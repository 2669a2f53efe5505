/* nn_depthwise_conv.h: DEPTHWISE_CONV_2D with depth multiplier 1, VALID padding,
 * with TANH fused when it follows (LeCun subsampling: tanh(coefficient * 2x2 sum + bias)).
 */
#ifndef NN_DEPTHWISE_CONV_H
#define NN_DEPTHWISE_CONV_H

#include "nn_common.h"

/* reference_integer_ops::DepthwiseConvPerChannel, one filter per channel:
   output[y][x][c] = requant(bias[c] + sum_{fy,fx} w[fy][fx][c] * in[y*sh+fy][x*sw+fx][c]). */
typedef struct {
    int in_w, channels;
    int filter_h, filter_w, stride_h, stride_w;
    int out_h, out_w;
    const int8_t *filter;            /* [filter_h][filter_w][channels] */
    const int32_t *bias;             /* input zero point folded in */
    const int32_t *multiplier;       /* [channels] */
    const int32_t *shift;
    int32_t out_zero_point;
    int32_t act_min, act_max;
    const int8_t *lut;               /* NULL or 256 entries indexed by value + 128 */
} nn_depthwise_params;

NN_INLINE void nn_depthwise_conv_s8(const nn_depthwise_params *p, const int8_t *input, int8_t *output)
{
    const int c_n = p->channels;
    for (int oy = 0; oy < p->out_h; ++oy) {
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int8_t *window = input + (oy * p->stride_h * p->in_w + ox * p->stride_w) * c_n;
            for (int c = 0; c < c_n; ++c) {
                int32_t acc = p->bias[c];
                for (int fy = 0; fy < p->filter_h; ++fy) {
                    for (int fx = 0; fx < p->filter_w; ++fx) {
                        acc += (int32_t)p->filter[(fy * p->filter_w + fx) * c_n + c] *
                               (int32_t)window[(fy * p->in_w + fx) * c_n + c];
                    }
                }
                int32_t v = nn_requantize(acc, p->multiplier[c], p->shift[c]) + p->out_zero_point;
                v = nn_clamp(v, p->act_min, p->act_max);
                *output++ = p->lut ? p->lut[v + 128] : (int8_t)v;
            }
        }
    }
}

#endif /* NN_DEPTHWISE_CONV_H */
