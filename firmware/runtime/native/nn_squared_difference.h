/* nn_squared_difference.h: SQUARED_DIFFERENCE of int8 tensors, the second broadcast
 * over rows (the RBF output layer: F6's [1,1,84] against the ten codes [1,10,84]).
 */
#ifndef NN_SQUARED_DIFFERENCE_H
#define NN_SQUARED_DIFFERENCE_H

#include "nn_common.h"

/* TFLM squared_difference.cc (int8): both inputs are rescaled to a common scale
   (x << 7 times a multiplier below one), subtracted and squared in int32, and the
   square is requantized to the output. One input is the layer's input, the other a
   constant; a (input 1): [a_rows][cols] with a_rows 1 or rows; b (input 2) likewise;
   output: [rows][cols]. */
typedef struct {
    int rows, cols, a_rows, b_rows;
    const int8_t *constant;
    int constant_first;                        /* the constant is input 1 (else input 2) */
    int32_t a_offset, a_multiplier, a_shift;   /* offset = -zero point; shift <= 0 */
    int32_t b_offset, b_multiplier, b_shift;
    int32_t left_shift;
    int32_t out_multiplier, out_shift, out_zero_point;
    int32_t act_min, act_max;
} nn_squared_difference_params;

NN_INLINE void nn_squared_difference_s8(const nn_squared_difference_params *p, const int8_t *input, int8_t *output)
{
    const int8_t *a = p->constant_first ? p->constant : input;
    const int8_t *b = p->constant_first ? input : p->constant;
    for (int r = 0; r < p->rows; ++r) {
        const int8_t *a_row = a + (p->a_rows == 1 ? 0 : r * p->cols);
        const int8_t *b_row = b + (p->b_rows == 1 ? 0 : r * p->cols);
        for (int j = 0; j < p->cols; ++j) {
            const int32_t sa = nn_requantize((p->a_offset + a_row[j]) * (1 << p->left_shift), p->a_multiplier,
                                             p->a_shift);
            const int32_t sb = nn_requantize((p->b_offset + b_row[j]) * (1 << p->left_shift), p->b_multiplier,
                                             p->b_shift);
            const int32_t d = sa - sb;
            const int32_t v = nn_requantize(d * d, p->out_multiplier, p->out_shift) + p->out_zero_point;
            *output++ = (int8_t)nn_clamp(v, p->act_min, p->act_max);
        }
    }
}

#endif /* NN_SQUARED_DIFFERENCE_H */
