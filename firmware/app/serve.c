/*
 * Message dispatch (docs/protocol.md): HELLO_REQUEST -> HELLO,
 * INFER -> RESULT, STATS_REQUEST -> STATS, anything wrong -> ERROR.
 * Every path answers or drops and returns, so the next good frame is served.
 */
#include <string.h>

#include "board.h"
#include "model_info.h"
#include "protocol.h"
#include "runtime.h"
#include "serve.h"

#if MODEL_INPUT_BYTES + 1 + PROTO_HEADER_BYTES > PROTO_MAX_PAYLOAD
#error "a RAW input does not fit in PROTO_MAX_PAYLOAD"
#endif
#if MODEL_OUTPUT_COUNT > 255 || 6 + MODEL_OUTPUT_COUNT > PROTO_TX_MAX_BODY
#error "MODEL_OUTPUT_COUNT does not fit in a RESULT frame"
#endif

static struct proto_rx rx;
static int8_t input[MODEL_INPUT_BYTES];
static int8_t output[MODEL_OUTPUT_COUNT];
static int runtime_status;
static uint32_t frames_ok, frames_bad;

static void send_error(uint16_t seq, enum proto_error code)
{
    uint8_t body = (uint8_t)code;
    frames_bad++;
    proto_send(uart_write, MSG_ERROR, seq, &body, 1);
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    if (n > 32)
        n = 32; /* HELLO must fit PROTO_TX_MAX_BODY */
    p[0] = (uint8_t)n;
    memcpy(p + 1, s, n);
    return n + 1;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u); /* both ends are little-endian IEEE 754 */
    put_u32(p, u);
}

void serve_send_hello(int boot, uint16_t seq)
{
    static const uint8_t sha[8] = MODEL_SHA256_PREFIX_BYTES;
    uint8_t b[PROTO_TX_MAX_BODY];
    b[0] = PROTO_VERSION;
    b[1] = boot ? 1 : 0;
    b[2] = tick_kind;
    b[3] = (uint8_t)PROTO_EXTRA_ENCODINGS;
    put_u32(b + 4, tick_hz);
    put_u32(b + 8, board_ram_static_bytes());
    put_u32(b + 12, runtime_arena_bytes());
    memcpy(b + 16, sha, 8);
    put_f32(b + 24, (float)MODEL_INPUT_SCALE);
    put_u32(b + 28, (uint32_t)(int32_t)MODEL_INPUT_ZERO_POINT);
    put_f32(b + 32, (float)MODEL_OUTPUT_SCALE);
    put_u32(b + 36, (uint32_t)(int32_t)MODEL_OUTPUT_ZERO_POINT);
    put_u16(b + 40, MODEL_INPUT_N);
    put_u16(b + 42, MODEL_INPUT_H);
    put_u16(b + 44, MODEL_INPUT_W);
    put_u16(b + 46, MODEL_INPUT_C);
    put_u16(b + 48, MODEL_OUTPUT_COUNT);
    put_u16(b + 50, PROTO_MAX_PAYLOAD);
    size_t n = 52;
    n += put_str(b + n, board_name);
    n += put_str(b + n, runtime_name);
    proto_send(uart_write, MSG_HELLO, seq, b, n);
}

static void send_stats(uint16_t seq)
{
    uint8_t b[20];
    put_u32(b + 0, board_stack_peak());
    put_u32(b + 4, board_stack_size());
    put_u32(b + 8, frames_ok);
    put_u32(b + 12, frames_bad);
    put_u32(b + 16, board_rx_dropped());
    proto_send(uart_write, MSG_STATS, seq, b, sizeof b);
}

/* The input of an INFER or PROFILE_REQUEST body into `input`; 0, or the error sent. */
static int decode_input(const struct proto_frame *f)
{
    if (f->body_len < 1) {
        send_error(f->seq, ERR_BAD_LENGTH);
        return -1;
    }
    const uint8_t *data = f->body + 1;
    size_t n = f->body_len - 1;
    switch (f->body[0]) {
    case ENC_RAW:
        if (n != MODEL_INPUT_BYTES) {
            send_error(f->seq, ERR_BAD_INPUT);
            return -1;
        }
        memcpy(input, data, n);
        break;
    case ENC_RLE:
        if (rle_decode(data, n, input, MODEL_INPUT_BYTES) != 0) {
            send_error(f->seq, ERR_BAD_INPUT);
            return -1;
        }
        break;
    case ENC_CTX:
        if (ctx_decode(data, n, input, MODEL_INPUT_BYTES, MODEL_INPUT_W * MODEL_INPUT_C) != 0) {
            send_error(f->seq, ERR_BAD_INPUT);
            return -1;
        }
        break;
    default:
        send_error(f->seq, ERR_BAD_INPUT);
        return -1;
    }
    if (runtime_status != 0) {
        send_error(f->seq, ERR_RUNTIME);
        return -1;
    }
    return 0;
}

static void send_result(uint16_t seq, uint32_t ticks)
{
    uint8_t b[6 + MODEL_OUTPUT_COUNT];
    /* The class: the first maximum, like numpy.argmax; for distance outputs (an RBF
       output layer, MODEL_SMALLEST_WINS) the first minimum, like numpy.argmin. */
    size_t best = 0;
    for (size_t i = 1; i < MODEL_OUTPUT_COUNT; i++)
        if (MODEL_SMALLEST_WINS ? output[i] < output[best] : output[i] > output[best])
            best = i;
    put_u32(b, ticks);
    b[4] = (uint8_t)best;
    b[5] = (uint8_t)MODEL_OUTPUT_COUNT;
    memcpy(b + 6, output, MODEL_OUTPUT_COUNT);
    frames_ok++;
    proto_send(uart_write, MSG_RESULT, seq, b, sizeof b);
}

static void infer(const struct proto_frame *f)
{
    if (decode_input(f) != 0)
        return;

    /* No interrupt handler may run inside the measured window. */
    uart_rx_irq_enable(0);
    ticks_start();
    int status = runtime_infer(input, output);
    uint32_t ticks = ticks_read();
    uart_rx_irq_enable(1);
    if (status != 0) {
        send_error(f->seq, ERR_RUNTIME);
        return;
    }
    send_result(f->seq, ticks);
}

#define PROFILE_MAX_LAYERS 16
#define PROFILE_NAME_MAX   24

/* PROFILE_REQUEST: one inference through runtime_profile(), answered by one PROFILE
   frame per layer, then the RESULT of that inference (docs/protocol.md). */
static void profile(const struct proto_frame *f)
{
    uint32_t ticks[PROFILE_MAX_LAYERS]; /* on the stack: no RAM reserved for a rare request */
    const char *names[PROFILE_MAX_LAYERS];
    if (decode_input(f) != 0)
        return;
    uart_rx_irq_enable(0);
    ticks_start();
    int layers = runtime_profile(input, output, ticks, names, PROFILE_MAX_LAYERS);
    uint32_t total = ticks_read();
    uart_rx_irq_enable(1);
    if (layers < 0) {
        send_error(f->seq, ERR_UNKNOWN_TYPE); /* this runtime cannot profile */
        return;
    }
    for (int i = 0; i < layers; i++) {
        uint8_t b[9 + PROFILE_NAME_MAX];
        size_t n = strlen(names[i]);
        if (n > PROFILE_NAME_MAX)
            n = PROFILE_NAME_MAX;
        b[0] = PROFILE_FORMAT;
        b[1] = (uint8_t)i;
        b[2] = (uint8_t)layers;
        b[3] = 0;
        put_u32(b + 4, ticks[i]);
        b[8] = (uint8_t)n;
        memcpy(b + 9, names[i], n);
        proto_send(uart_write, MSG_PROFILE, f->seq, b, 9 + n);
    }
    send_result(f->seq, total);
}

static void dispatch(const struct proto_frame *f)
{
    switch (f->type) {
    case MSG_HELLO_REQUEST:
        if (f->body_len != 0) {
            send_error(f->seq, ERR_BAD_LENGTH);
            return;
        }
        frames_ok++;
        serve_send_hello(0, f->seq);
        return;
    case MSG_STATS_REQUEST:
        if (f->body_len != 0) {
            send_error(f->seq, ERR_BAD_LENGTH);
            return;
        }
        frames_ok++;
        send_stats(f->seq);
        return;
    case MSG_INFER:
        infer(f);
        return;
    case MSG_PROFILE_REQUEST:
        profile(f);
        return;
    default:
        send_error(f->seq, ERR_UNKNOWN_TYPE);
        return;
    }
}

void serve_init(void)
{
    proto_rx_reset(&rx);
    runtime_status = runtime_init();
}

void serve_byte(uint8_t byte)
{
    struct proto_frame f;
    enum proto_error err = ERR_NONE;
    switch (proto_rx_push(&rx, byte, &f, &err)) {
    case RX_FRAME:
        dispatch(&f);
        break;
    case RX_ERROR:
        send_error(f.seq, err);
        break;
    case RX_PENDING:
        break;
    }
}

int serve_frame_in_progress(void)
{
    return rx.len != 0 || rx.overflow;
}
