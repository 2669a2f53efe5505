/* CTX input encoding (docs/protocol.md): a context-modelled binary
 * arithmetic code. Per element a "differs from fill" bit whose context is
 * which of six decoded neighbours differ, then, if it differs, its 8 bits
 * with a context of the neighbours' median predictor. Probabilities start at
 * 1/2 for every image and adapt, so the decoder needs no tables. The work is
 * bounded: exactly `size` elements, at most 9 bits each. */
#include "protocol.h"

#define CTX_PROB_BITS   12u
#define CTX_PROB_ONE    (1u << CTX_PROB_BITS)
#define CTX_ADAPT_SHIFT 4u
#define CTX_ZERO        64u
#define CTX_CLASS       20u
#define CTX_COUNT       (CTX_ZERO + 4u * CTX_CLASS)

struct ctx_decoder {
    const uint8_t *body;
    size_t n, pos;
    uint32_t x1, x2, x;
    uint16_t p[CTX_COUNT];
};

static uint32_t next_byte(struct ctx_decoder *d)
{
    uint32_t b = d->pos < d->n ? d->body[d->pos] : 0u; /* past the end: zeros */
    d->pos++;
    return b;
}

static unsigned decode_bit(struct ctx_decoder *d, unsigned ctx)
{
    uint32_t q = d->p[ctx];
    uint32_t r = d->x2 - d->x1;
    uint32_t xmid = d->x1 + (r >> CTX_PROB_BITS) * q + (((r & (CTX_PROB_ONE - 1u)) * q) >> CTX_PROB_BITS);
    unsigned bit;
    if (d->x <= xmid) {
        bit = 1;
        d->x2 = xmid;
        d->p[ctx] = (uint16_t)(q + ((CTX_PROB_ONE - q) >> CTX_ADAPT_SHIFT));
    } else {
        bit = 0;
        d->x1 = xmid + 1u;
        d->p[ctx] = (uint16_t)(q - (q >> CTX_ADAPT_SHIFT));
    }
    while (((d->x1 ^ d->x2) & 0xFF000000u) == 0) {
        d->x1 <<= 8;
        d->x2 = (d->x2 << 8) | 0xFFu;
        d->x = (d->x << 8) | next_byte(d);
    }
    return bit;
}

static int median3(int a, int b, int c)
{
    int lo = a < b ? a : b, hi = a < b ? b : a;
    return c < lo ? lo : (c > hi ? hi : c);
}

int ctx_decode(const uint8_t *body, size_t n, int8_t *out, size_t size, size_t width)
{
    static struct ctx_decoder d; /* static: keeps the stack small */
    if (n < 1 || width == 0 || size % width != 0)
        return -1;
    const uint8_t fill = body[0];
    d.body = body + 1;
    d.n = n - 1;
    d.pos = 0;
    d.x1 = 0;
    d.x2 = 0xFFFFFFFFu;
    d.x = 0;
    for (int i = 0; i < 4; i++)
        d.x = (d.x << 8) | next_byte(&d);
    for (unsigned i = 0; i < CTX_COUNT; i++)
        d.p[i] = (uint16_t)(CTX_PROB_ONE / 2u);

        /* Neighbours are read back from `out` as offsets from fill. */
#define U(i) ((int)(uint8_t)((uint8_t)out[(i)] - fill))
    for (size_t i = 0; i < size; i++) {
        size_t r = i / width, c = i % width;
        int a = c >= 1 ? U(i - 1) : 0;
        int e = c >= 2 ? U(i - 2) : 0;
        int b = r >= 1 ? U(i - width) : 0;
        int cc = (r >= 1 && c >= 1) ? U(i - width - 1) : 0;
        int dd = (r >= 1 && c + 1 < width) ? U(i - width + 1) : 0;
        int f = r >= 2 ? U(i - 2 * width) : 0;
        unsigned z = (unsigned)(a != 0) | (unsigned)(b != 0) << 1 | (unsigned)(cc != 0) << 2 |
                     (unsigned)(dd != 0) << 3 | (unsigned)(e != 0) << 4 | (unsigned)(f != 0) << 5;
        unsigned v = 0;
        if (decode_bit(&d, z)) {
            int pred = median3(a, b, a + b - cc);
            unsigned cls = (unsigned)(pred < 0 ? 0 : (pred > 255 ? 255 : pred)) >> 6;
            unsigned base = CTX_ZERO + cls * CTX_CLASS, node = 1;
            for (int k = 0; k < 4; k++)
                node = 2u * node + decode_bit(&d, base + node);
            v = node - 16u;
            for (unsigned k = 0; k < 4; k++)
                v = 2u * v + decode_bit(&d, base + 16u + k);
        }
        out[i] = (int8_t)(uint8_t)(v + fill);
    }
#undef U
    /* The decoder reads 3 bytes past the encoder's last: more is garbage. */
    return d.pos - 3u < d.n ? -1 : 0;
}
