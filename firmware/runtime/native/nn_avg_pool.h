/* nn_avg_pool.h: AVERAGE_POOL_2D on its own (any padding and stride).
 */
#ifndef NN_AVG_POOL_H
#define NN_AVG_POOL_H

#include "nn_common.h"

/* AVERAGE_POOL_2D (any padding/stride): reference_integer_ops::AveragePool. */
typedef struct {
    int in_h, in_w, channels;
    int filter_h, filter_w, stride_h, stride_w;
    int pad_h, pad_w; /* top/left padding (SAME) */
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

#endif /* NN_AVG_POOL_H */
