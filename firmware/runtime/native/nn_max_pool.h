/* nn_max_pool.h: MAX_POOL_2D (any padding and stride).
 */
#ifndef NN_MAX_POOL_H
#define NN_MAX_POOL_H

#include "nn_avg_pool.h" /* nn_pool_params */

/* MAX_POOL_2D: reference_integer_ops::MaxPool. The largest value of the window
   (only taps inside the input count), clamped to the fused activation's range;
   input and output share one quantization, so no arithmetic is needed. */
NN_INLINE void nn_max_pool_s8(const nn_pool_params *p, const int8_t *input, int8_t *output)
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
                int32_t max = INT8_MIN;
                for (int fy = fy0; fy < fy1; ++fy) {
                    for (int fx = fx0; fx < fx1; ++fx) {
                        const int32_t v = input[((y0 + fy) * p->in_w + (x0 + fx)) * p->channels + c];
                        max = v > max ? v : max;
                    }
                }
                *output++ = (int8_t)nn_clamp(max, p->act_min, p->act_max);
            }
        }
    }
}

#endif /* NN_MAX_POOL_H */
