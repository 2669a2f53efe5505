/* nn_kernels.h: every kernel of the native runtime; the generated model includes this.
 *
 * One kernel per file, each reproducing its TensorFlow Lite Micro reference
 * kernel bit for bit; nn_common.h holds what they share (fixed point, dot products).
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include "nn_avg_pool.h"
#include "nn_conv2d.h"
#include "nn_conv2d_s16.h"
#include "nn_depthwise_conv.h"
#include "nn_fully_connected.h"
#include "nn_fully_connected_pairs.h"
#include "nn_lut.h"
#include "nn_max_pool.h"
#include "nn_softmax.h"
#include "nn_squared_difference.h"
#include "nn_sum.h"

#endif /* NN_KERNELS_H */
