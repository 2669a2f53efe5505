/* RLE of INFER inputs (docs/protocol.md): fill byte, then runs of
 * skip:u8 count:u8 literal[count]. Must cover exactly `size` elements. */
#include "protocol.h"

int rle_decode(const uint8_t *body, size_t n, int8_t *out, size_t size)
{
    if (n < 1)
        return -1;
    const int8_t fill = (int8_t)body[0];
    size_t pos = 0, i = 1;
    while (i < n) {
        if (n - i < 2)
            return -1; /* truncated run header */
        size_t skip = body[i], count = body[i + 1];
        i += 2;
        if (skip > size - pos || count > size - pos - skip || count > n - i)
            return -1; /* past the tensor or the body */
        for (size_t k = 0; k < skip; k++)
            out[pos++] = fill;
        for (size_t k = 0; k < count; k++)
            out[pos++] = (int8_t)body[i++];
    }
    return pos == size ? 0 : -1;
}
