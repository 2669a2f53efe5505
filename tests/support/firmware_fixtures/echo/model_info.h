/*
 * TEST FIXTURE, not a model: stands in for the codegen output so the board,
 * protocol and build can be tested without a trained network. Shipped
 * nowhere; used by tests/test_firmware*.py and tests/test_qemu*.py.
 */
#ifndef MODEL_INFO_H
#define MODEL_INFO_H

#define MODEL_NAME                "echo-fixture"
#define MODEL_INPUT_N             1
#define MODEL_INPUT_H             32
#define MODEL_INPUT_W             32
#define MODEL_INPUT_C             1
#define MODEL_INPUT_BYTES         (MODEL_INPUT_N * MODEL_INPUT_H * MODEL_INPUT_W * MODEL_INPUT_C)
#define MODEL_OUTPUT_COUNT        10
#define MODEL_INPUT_SCALE         0.00392156862745098f
#define MODEL_INPUT_ZERO_POINT    -128
#define MODEL_OUTPUT_SCALE        0.00390625f
#define MODEL_OUTPUT_ZERO_POINT   -128
#define MODEL_SMALLEST_WINS       0
#define MODEL_SHA256_PREFIX_BYTES {0xec, 0x40, 0xf1, 0x7e, 0x00, 0x01, 0x02, 0x03}

#endif
