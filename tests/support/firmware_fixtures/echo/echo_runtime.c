/*
 * TEST FIXTURE runtime (not shipped): output[i] = saturating int8 sum of
 * input slice i (slice i = elements [i*N/10, (i+1)*N/10)), so a test can
 * check every output byte with numpy. An input whose every byte is -128
 * makes runtime_infer fail, to exercise ERROR(RUNTIME). An input starting
 * with the bytes "SLOW" first spins ~10M instructions, like a slow runtime,
 * so tests can pile up received bytes behind a long inference. One starting
 * with "TRAP" executes an undefined instruction: the fault must reset the
 * chip (boot HELLO again) instead of hanging it.
 * tests/firmware_fixtures/echo/reference.py holds the same function.
 */
#include <stdint.h>

#include "model_info.h"
#include "runtime.h"

const char runtime_name[] = "echo-fixture";

int runtime_init(void)
{
    return 0;
}

int runtime_infer(const int8_t *input, int8_t *output)
{
    if (input[0] == 'T' && input[1] == 'R' && input[2] == 'A' && input[3] == 'P')
        __builtin_trap();
    if (input[0] == 'S' && input[1] == 'L' && input[2] == 'O' && input[3] == 'W')
        for (volatile uint32_t spin = 0; spin < 2000000u; spin++)
            ;
    int all_min = 1;
    for (int i = 0; i < MODEL_OUTPUT_COUNT; i++) {
        int lo = i * MODEL_INPUT_BYTES / MODEL_OUTPUT_COUNT;
        int hi = (i + 1) * MODEL_INPUT_BYTES / MODEL_OUTPUT_COUNT;
        int32_t acc = 0;
        for (int k = lo; k < hi; k++) {
            acc += input[k];
            all_min &= input[k] == -128;
        }
        output[i] = (int8_t)(acc > 127 ? 127 : acc < -128 ? -128 : acc);
    }
    return all_min ? -1 : 0;
}

int runtime_profile(const int8_t *input, int8_t *output, uint32_t *ticks, const char **names, int max_layers)
{
    (void)input, (void)output, (void)ticks, (void)names, (void)max_layers;
    return -1; /* no layers to profile: the device answers ERROR(UNKNOWN_TYPE) */
}

uint32_t runtime_arena_bytes(void)
{
    return 0;
}
