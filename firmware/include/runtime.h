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

/* The per-layer profile (optional). One inference like runtime_infer(), with the
 * ticks each layer took in ticks[i] (ticks_read() after the layer minus before it)
 * and the layer's name in names[i], for at most max_layers layers. Returns the
 * number of layers, or -1 if this runtime cannot profile. runtime_infer() carries
 * no measuring code, so its tick count is the same whether or not this exists. */
int runtime_profile(const int8_t *input, int8_t *output, uint32_t *ticks, const char **names, int max_layers);

/* Activation RAM actually used, in bytes. */
uint32_t runtime_arena_bytes(void);

/* "native" or "tflm" (sent in HELLO). */
extern const char runtime_name[];

#ifdef __cplusplus
}
#endif

#endif /* RUNTIME_H */
