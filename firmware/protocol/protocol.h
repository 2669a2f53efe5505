/*
 * Serial protocol, device side (docs/protocol.md): COBS framing, CRC-32,
 * RLE input decoding, frame receiver and sender. Knows bytes, not models:
 * message handling lives in app/serve.c. Builds for the target and, with
 * gcc, for the host tests (tests/test_protocol_c.py).
 */
#ifndef PROTOCOL_H
#define PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION      1u
#define PROTO_MAX_PAYLOAD  1100u /* version, type, seq, body: without the CRC */
#define PROTO_HEADER_BYTES 4u
#define PROTO_CRC_BYTES    4u
#define PROTO_NO_SEQ       0xFFFFu
/* Largest COBS encoding of MAX_PAYLOAD + CRC (one extra byte per 254),
 * without the 0x00 delimiter. */
#define PROTO_MAX_ENCODED                                                                                    \
    (PROTO_MAX_PAYLOAD + PROTO_CRC_BYTES + (PROTO_MAX_PAYLOAD + PROTO_CRC_BYTES) / 254u + 1u)

enum proto_msg_type {
    MSG_HELLO_REQUEST = 0x01,
    MSG_INFER = 0x02,
    MSG_STATS_REQUEST = 0x03,
    MSG_PROFILE_REQUEST = 0x04,
    MSG_HELLO = 0x81,
    MSG_RESULT = 0x82,
    MSG_STATS = 0x83,
    MSG_PROFILE = 0x84,
    MSG_ERROR = 0xEE
};

enum proto_error {
    ERR_NONE = 0,
    ERR_BAD_CRC = 1,
    ERR_BAD_FRAME = 2,
    ERR_TOO_LONG = 3,
    ERR_BAD_VERSION = 4,
    ERR_UNKNOWN_TYPE = 5,
    ERR_BAD_LENGTH = 6,
    ERR_BAD_INPUT = 7,
    ERR_RUNTIME = 8
};

/* Layout version of a PROFILE body (docs/protocol.md). */
#define PROFILE_FORMAT 1

enum proto_encoding { ENC_RAW = 0, ENC_RLE = 1, ENC_CTX = 2 };

/* Encodings beyond RAW and RLE this firmware decodes: HELLO byte 3, bit k =
 * encoding k (older firmware sends 0 there). */
#define PROTO_EXTRA_ENCODINGS (1u << ENC_CTX)

/* --- building blocks ----------------------------------------------------- */

/* IEEE 802.3 CRC-32 (zlib.crc32). Start with crc = 0; chain calls. */
uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t n);

/* COBS-encode n bytes; out needs n + n/254 + 1 bytes. Returns encoded length
 * (no delimiter). */
size_t cobs_encode(const uint8_t *in, size_t n, uint8_t *out);

/* COBS-decode; out may equal in (in-place). Returns the decoded length, or
 * -1 if the input is not valid COBS (a 0x00 byte or a block past the end),
 * with the same rules as the Python `cobs` package. */
long cobs_decode(const uint8_t *in, size_t n, uint8_t *out);

/* Decode an RLE INFER body (fill byte, then skip/count/literal runs) into
 * exactly `size` int8 elements. 0 = ok, -1 = malformed or wrong count. */
int rle_decode(const uint8_t *body, size_t n, int8_t *out, size_t size);

/* Decode a CTX INFER body (fill byte, then the arithmetic code) into exactly
 * `size` int8 elements read as rows of `width`. 0 = ok, -1 = malformed
 * (bytes left unread, or size not a multiple of width). */
int ctx_decode(const uint8_t *body, size_t n, int8_t *out, size_t size, size_t width);

/* --- frames ---------------------------------------------------------------- */

struct proto_frame {
    uint8_t type;
    uint16_t seq;
    const uint8_t *body;
    size_t body_len;
};

/* Receiver: bytes in, frames out. One buffer of PROTO_MAX_ENCODED + 1 bytes;
 * COBS is decoded in place. */
struct proto_rx {
    uint8_t buf[PROTO_MAX_ENCODED + 1];
    size_t len;
    uint8_t overflow;
};

enum proto_rx_status {
    RX_PENDING = 0, /* byte consumed, frame not complete (or an empty frame) */
    RX_FRAME = 1,   /* *frame is valid until the next proto_rx_push() */
    RX_ERROR = 2    /* *error and *frame->seq (PROTO_NO_SEQ if untrusted) set */
};

void proto_rx_reset(struct proto_rx *rx);
enum proto_rx_status proto_rx_push(struct proto_rx *rx, uint8_t byte, struct proto_frame *frame,
                                   enum proto_error *error);

/* Largest body the device sends (HELLO is the longest). */
#define PROTO_TX_MAX_BODY 96u

/* Sends one frame through `write` (normally uart_write). Bodies longer than
 * PROTO_TX_MAX_BODY are a programming error and are not sent (returns -1). */
typedef void (*proto_write_fn)(const uint8_t *data, size_t n);
int proto_send(proto_write_fn write, uint8_t type, uint16_t seq, const uint8_t *body, size_t body_len);

/* Little-endian helpers for message bodies. */
static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif /* PROTOCOL_H */
