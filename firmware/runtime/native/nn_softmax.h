/* nn_softmax.h: SOFTMAX int8 -> int8 (nn_softmax.c).
 */
#ifndef NN_SOFTMAX_H
#define NN_SOFTMAX_H

#include "nn_common.h"

/* SOFTMAX int8 -> int8 (output scale 1/256, zero point -128):
   reference_ops::Softmax with gemmlowp fixed point. In nn_softmax.c. */
typedef struct {
    int outer, depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} nn_softmax_params;

void nn_softmax_s8(const nn_softmax_params *p, const int8_t *input, int8_t *output);

#endif /* NN_SOFTMAX_H */
