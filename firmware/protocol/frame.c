/* Frame receiver and sender: COBS( payload || CRC32 ) 0x00, payload =
 * version:u8 type:u8 seq:u16 body (docs/protocol.md). */
#include "protocol.h"

/* The seq of a COBS-encoded frame whose first block decodes to a header of
 * our version, however the rest looks; PROTO_NO_SEQ otherwise. */
static uint16_t header_seq_hint(const uint8_t *in, size_t n)
{
    uint8_t h[PROTO_HEADER_BYTES];
    size_t i = 0, o = 0;
    while (o < sizeof h && i < n) {
        uint8_t code = in[i++];
        if (code == 0)
            return PROTO_NO_SEQ;
        for (uint8_t k = 1; k < code && o < sizeof h; k++) {
            if (i >= n)
                return PROTO_NO_SEQ;
            h[o++] = in[i++];
        }
        if (o < sizeof h && code < 0xFF)
            h[o++] = 0;
    }
    if (o < sizeof h || h[0] != PROTO_VERSION)
        return PROTO_NO_SEQ;
    return get_u16(h + 2);
}

void proto_rx_reset(struct proto_rx *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

enum proto_rx_status proto_rx_push(struct proto_rx *rx, uint8_t byte, struct proto_frame *frame,
                                   enum proto_error *error)
{
    if (byte != 0) {
        if (rx->len < sizeof rx->buf)
            rx->buf[rx->len++] = byte;
        else
            rx->overflow = 1; /* keep dropping until the delimiter */
        return RX_PENDING;
    }

    /* Delimiter: judge what was collected, then start afresh. */
    size_t len = rx->len;
    uint8_t overflow = rx->overflow;
    proto_rx_reset(rx);
    frame->seq = PROTO_NO_SEQ;
    if (overflow) {
        *error = ERR_TOO_LONG;
        return RX_ERROR;
    }
    if (len == 0)
        return RX_PENDING; /* empty frame: ignored */

    /* A damaged frame's header often survives (a lost or flipped byte further
     * on): its seq, as a hint in the ERROR, lets the host resend just that
     * request instead of waiting for a timeout. Read before the in-place decode. */
    uint16_t hint = header_seq_hint(rx->buf, len);
    long raw = cobs_decode(rx->buf, len, rx->buf);
    if (raw < 0 || (size_t)raw < PROTO_HEADER_BYTES + PROTO_CRC_BYTES) {
        frame->seq = raw < 0 ? hint : PROTO_NO_SEQ; /* a whole frame too short has no header */
        *error = ERR_BAD_FRAME;
        return RX_ERROR;
    }
    size_t payload = (size_t)raw - PROTO_CRC_BYTES;
    if (payload > PROTO_MAX_PAYLOAD) {
        *error = ERR_TOO_LONG;
        return RX_ERROR;
    }
    if (crc32_update(0, rx->buf, payload) != get_u32(rx->buf + payload)) {
        frame->seq = hint;
        *error = ERR_BAD_CRC;
        return RX_ERROR;
    }
    frame->type = rx->buf[1];
    frame->seq = get_u16(rx->buf + 2);
    frame->body = rx->buf + PROTO_HEADER_BYTES;
    frame->body_len = payload - PROTO_HEADER_BYTES;
    if (rx->buf[0] != PROTO_VERSION) {
        *error = ERR_BAD_VERSION; /* CRC held, so the seq is trusted */
        return RX_ERROR;
    }
    return RX_FRAME;
}

int proto_send(proto_write_fn write, uint8_t type, uint16_t seq, const uint8_t *body, size_t body_len)
{
    enum { RAW_MAX = PROTO_HEADER_BYTES + PROTO_TX_MAX_BODY + PROTO_CRC_BYTES };
    static uint8_t raw[RAW_MAX];
    static uint8_t enc[1 + RAW_MAX + RAW_MAX / 254 + 2];

    if (body_len > PROTO_TX_MAX_BODY)
        return -1;
    raw[0] = PROTO_VERSION;
    raw[1] = type;
    put_u16(raw + 2, seq);
    for (size_t i = 0; i < body_len; i++)
        raw[PROTO_HEADER_BYTES + i] = body[i];
    size_t payload = PROTO_HEADER_BYTES + body_len;
    put_u32(raw + payload, crc32_update(0, raw, payload));
    /* A delimiter before the frame too: if the previous frame's delimiter was
     * lost, only that frame is lost, not this one with it. */
    enc[0] = 0;
    size_t n = 1 + cobs_encode(raw, payload + PROTO_CRC_BYTES, enc + 1);
    enc[n++] = 0;
    write(enc, n);
    return 0;
}
