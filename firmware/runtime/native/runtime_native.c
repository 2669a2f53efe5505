/* runtime_native.c: include/runtime.h implemented by the generated infer().
 *
 * The model is native_model.c (buffer plan, infer()) and native_weights.c
 * (constants) from `lenet-mcu codegen --runtime native`; the kernels are the
 * nn_*.h / nn_*.c files beside this one.
 * There is nothing to prepare at run time: all constants are in flash and the
 * activation arena is a static array.
 */
#include "runtime.h"

#include "board.h"

#include "model_info.h"
#include "native_model.h"

#if NATIVE_INPUT_BYTES != MODEL_INPUT_BYTES || NATIVE_OUTPUT_COUNT != MODEL_OUTPUT_COUNT
#error "native_model.h and model_info.h come from different models: run lenet-mcu codegen again"
#endif

const char runtime_name[] = "native";

int runtime_init(void)
{
    return 0;
}

int runtime_infer(const int8_t *input, int8_t *output)
{
    infer(input, output);
    return 0;
}

int runtime_profile(const int8_t *input, int8_t *output, uint32_t *ticks, const char **names, int max_layers)
{
    if (max_layers < NATIVE_LAYER_COUNT) {
        return -1;
    }
    infer_profiled(input, output, ticks_read, ticks);
    for (int i = 0; i < NATIVE_LAYER_COUNT; ++i) {
        names[i] = native_layer_names[i];
    }
    return NATIVE_LAYER_COUNT;
}

uint32_t runtime_arena_bytes(void)
{
    return NATIVE_ARENA_BYTES;
}
