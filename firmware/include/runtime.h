/*
 * Runtime interface: one implementation per inference engine
 * (runtime/native/, runtime/tflm/). The model itself comes from the
 * generated MODEL_DIR (model_info.h + sources).
 */
#ifndef RUNTIME_H
#define RUNTIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Prepare the model (tensors, arena). 0 = ok. Called once at boot. */
int runtime_init(void);

/* One inference: MODEL_INPUT_BYTES int8 in, MODEL_OUTPUT_COUNT int8 out. 0 = ok. */
int runtime_infer(const int8_t *input, int8_t *output);

/* Activation RAM actually used, in bytes. */
uint32_t runtime_arena_bytes(void);

/* "native" or "tflm" (sent in HELLO). */
extern const char runtime_name[];

#ifdef __cplusplus
}
#endif

#endif /* RUNTIME_H */
