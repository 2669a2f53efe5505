/* nn_fully_connected.h: FULLY_CONNECTED, with TANH fused when it follows.
 */
#ifndef NN_FULLY_CONNECTED_H
#define NN_FULLY_CONNECTED_H

#include "nn_common.h"

/* FULLY_CONNECTED: output[b][o] = requant(bias[o] + sum_i w[o][i] * in[b][i]). */
typedef struct {
    int batches, in_features, out_features;
    const int8_t *weights;     /* [out_features][in_features] */
    const int32_t *bias;       /* input zero point folded in */
    const int32_t *multiplier; /* [out_features] (per-tensor models repeat one value) */
    const int32_t *shift;
    int32_t max_shift; /* largest of shift[] (<= 0: right shifts only) */
    int32_t out_zero_point;
    int32_t act_min, act_max;
    const int8_t *lut; /* NULL or 256 entries indexed by value + 128 */
    int block;         /* outputs per pass (divides out_features, <= NN_MAX_BLOCK) */
} nn_fc_params;

NN_INLINE void nn_fully_connected_s8(const nn_fc_params *p, const int8_t *input, int8_t *output)
{
    for (int b = 0; b < p->batches; ++b) {
        for (int o = 0; o < p->out_features; o += p->block) {
            int32_t acc[NN_MAX_BLOCK];
            for (int k = 0; k < p->block; ++k) {
                acc[k] = p->bias[o + k];
            }
            nn_dot_block_s8(input, p->weights + o * p->in_features, p->in_features, p->in_features, p->block,
                            acc);
            for (int k = 0; k < p->block; ++k) {
                output[o + k] =
                    (int8_t)nn_output_stage(acc[k], p->multiplier[o + k], p->shift[o + k], p->max_shift,
                                            p->out_zero_point, p->act_min, p->act_max, p->lut);
            }
        }
        input += p->in_features;
        output += p->out_features;
    }
}

#endif /* NN_FULLY_CONNECTED_H */
