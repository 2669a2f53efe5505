/* Consistent Overhead Byte Stuffing: no 0x00 in the encoding, so 0x00 can
 * delimit frames. Same rules as the Python `cobs` package (host side). */
#include "protocol.h"

size_t cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            /* A full block ends here; a new one starts only if data remains
             * (no trailing 0x01 block, as the Python encoder). */
            if (++code == 0xFF && i + 1 < n) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
    }
    out[code_at] = code;
    return o;
}

long cobs_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0)
            return -1;
        size_t end = i + code - 1u;
        if (end > n)
            return -1; /* block runs past the end */
        while (i < end) {
            uint8_t b = in[i++];
            if (b == 0)
                return -1;
            out[o++] = b; /* o < i always: safe in place */
        }
        if (i < n && code < 0xFF)
            out[o++] = 0;
    }
    return (long)o;
}
