/* Host test driver for the native runtime: the generated infer() compiled with gcc.
 *
 * Reads int8 input tensors of NATIVE_INPUT_BYTES from stdin, back to back, and
 * writes NATIVE_OUTPUT_COUNT int8 outputs per input to stdout, until EOF.
 * Exit status 1 on a truncated input record.
 */
#include <stdio.h>

#include "native_model.h"

int main(void)
{
    static int8_t input[NATIVE_INPUT_BYTES];
    static int8_t output[NATIVE_OUTPUT_COUNT];
    for (;;) {
        size_t got = fread(input, 1, sizeof input, stdin);
        if (got == 0 && feof(stdin)) {
            break;
        }
        if (got != sizeof input) {
            fprintf(stderr, "native_host_driver: truncated input record (%zu of %d bytes)\n", got,
                    NATIVE_INPUT_BYTES);
            return 1;
        }
        infer(input, output);
        if (fwrite(output, 1, sizeof output, stdout) != sizeof output) {
            return 1;
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
