/* nn_sum.h: SUM over the innermost axis of an int8 tensor (the RBF distances).
 */
#ifndef NN_SUM_H
#define NN_SUM_H

#include "nn_common.h"

/* reference_ops::QuantizedMeanOrSum (compute_sum): the raw int8 values are added
   in int32, minus zero point times the count, requantized by in_scale / out_scale. */
typedef struct {
    int rows, cols;
    int32_t in_zero_point;
    int32_t multiplier, shift;
    int32_t out_zero_point;
} nn_sum_params;

NN_INLINE void nn_sum_s8(const nn_sum_params *p, const int8_t *input, int8_t *output)
{
    for (int r = 0; r < p->rows; ++r) {
        int32_t sum = 0;
        for (int j = 0; j < p->cols; ++j) {
            sum += input[r * p->cols + j];
        }
        const int32_t v = nn_requantize(sum - p->in_zero_point * p->cols, p->multiplier, p->shift) + p->out_zero_point;
        output[r] = (int8_t)nn_clamp(v, INT8_MIN, INT8_MAX);
    }
}

#endif /* NN_SUM_H */
