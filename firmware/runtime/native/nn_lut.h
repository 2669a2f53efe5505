/* nn_lut.h: an element-wise int8 operator as a 256-entry table.
 */
#ifndef NN_LUT_H
#define NN_LUT_H

#include "nn_common.h"

/* Element-wise int8 op through its 256-entry table (indexed by value + 128). */
NN_INLINE void nn_lut_s8(const int8_t *lut, const int8_t *input, int8_t *output, int count)
{
    for (int i = 0; i < count; ++i) {
        output[i] = lut[input[i] + 128];
    }
}

#endif /* NN_LUT_H */
