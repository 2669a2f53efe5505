/* nn_conv2d_s16.h: CONV_2D (+ TANH + AVERAGE_POOL_2D) over an input widened to int16.
 *
 * The fast convolution of the native runtime. What makes it fast:
 *  - weights laid out for SMLAD at codegen: int16, already doubled (see
 *    nn_requantize.h), two taps of a filter row per word, so the inner loop
 *    never widens a weight; the input arrives widened to int16 too (the layer
 *    before wrote it that way, or the layer function widens image rows once);
 *  - register blocking: each pass computes `block` output channels at two
 *    horizontally adjacent positions (the two columns of a 2-wide pooling
 *    window), so every loaded input word feeds `block` SMLADs and every loaded
 *    weight word feeds two;
 *  - no im2col: a filter row is a contiguous run of the NHWC input row;
 *  - conv + requantization + table (TANH) + pooling fused: the conv outputs of
 *    a pooling window are summed (average pooling) or compared (max pooling) in
 *    registers and only the pooled value is stored.
 * Filter rows with an odd number of taps are padded with a zero weight, so the
 * last word of a row reads one value past the taps (the planner pads buffers).
 */
#ifndef NN_CONV2D_S16_H
#define NN_CONV2D_S16_H

#include "nn_requantize.h"

#define NN_S16_MAX_BLOCK 6

typedef struct {
    int in_w, in_c;                 /* input width and depth; input rows are NHWC int16 */
    int filter_h, filter_w;
    int row_words;                  /* int16 pairs per filter row: (filter_w * in_c + 1) / 2 */
    int out_h, out_w, out_c;        /* output size (after pooling) */
    int block;                      /* output channels per pass (divides out_c, <= NN_S16_MAX_BLOCK) */
    int pool_h, pool_w;             /* pooling window (pool_w is 1 or 2; 1x1: no pooling) */
    const uint32_t *filter;         /* [out_c / block][filter_h][row_words][block]: int16 pairs, doubled */
    const int32_t *bias;            /* [out_c] doubled, input zero point folded in */
    const int32_t *requant;         /* [out_c][3]: multiplier M, offset, right shift r (nn_requantize.h) */
    int shift_all;                  /* r when every channel shares it (a constant), else 0 */
    int32_t act_min, act_max;       /* fused activation range of the conv */
    const int8_t *lut;              /* NULL or 256 entries indexed by value + 128 */
    int32_t pool_act_min, pool_act_max;
    int pool_max;                   /* 1: the fused pooling is MAX_POOL_2D, 0: AVERAGE_POOL_2D */
    int out_s16;                    /* 1: write int16 (the next layer's input format), 0: int8 */
    int out_pairs;                  /* int16 output in channel-pair planes (below), else NHWC */
    int in_s16;                     /* 1: the input arrives as int16 (else the layer widens it first) */
    int in_pairs;                   /* the int16 input is in channel-pair planes (in_c even) */
    int quad;                       /* 1: nn_conv2d_s16_row_quad (odd in_c, 2x2 pool); filter [..][block][2] */
} nn_conv2d_s16_params;

#define NN_S16_MAX_ROWS 16 /* filter_h + pool_h - 1 (codegen checks) */
/* Filters of at most this many words per output channel are unrolled completely. */
#ifndef NN_S16_UNROLL_WORDS
#define NN_S16_UNROLL_WORDS 16
#endif

#if NN_USE_SIMD
/* The inner step on Cortex-M4, written out so that the 2 x block accumulators stay
   in registers: gcc's scheduler hoists loads in long unrolled blocks and then runs
   out of the 14 usable registers. Each statement is volatile so the steps keep their
   order. d0/d1: the next int16 pair at positions 0 and 1 (x advances by a word). */
#define NN_LOAD_2(D0_, D1_, X_, STEP1_)                                                     \
    __asm__ volatile("ldr %[b], [%[p], %[o]]\n\tldr %[a], [%[p]], #4"                  \
                     : [a] "=&r"(D0_), [b] "=&r"(D1_), [p] "+r"(X_)                        \
                     : [o] "i"(STEP1_))
/* two channels k, l from two filter words (w advances by two words) */
#define NN_MAC_2x2(D0_, D1_, W_, A0K_, A1K_, A0L_, A1L_)                                       \
    do {                                                                               \
        uint32_t wk_, wl_;                                                             \
        __asm__ volatile("ldrd %[wk], %[wl], [%[w]], #8\n\t"                             \
                         "smlad %[a0k], %[d0], %[wk], %[a0k]\n\t"                        \
                         "smlad %[a1k], %[d1], %[wk], %[a1k]\n\t"                        \
                         "smlad %[a0l], %[d0], %[wl], %[a0l]\n\t"                        \
                         "smlad %[a1l], %[d1], %[wl], %[a1l]"                             \
                         : [wk] "=&r"(wk_), [wl] "=&r"(wl_), [w] "+r"(W_), [a0k] "+r"(A0K_), \
                           [a1k] "+r"(A1K_), [a0l] "+r"(A0L_), [a1l] "+r"(A1L_)             \
                         : [d0] "r"(D0_), [d1] "r"(D1_));                                   \
    } while (0)
/* NN_MAC_2x2 for the first step of a pass: the accumulators start from the biases
   bk, bl instead of being copied from them first */
#define NN_MAC_2x2_FROM(D0_, D1_, W_, BK_, BL_, A0K_, A1K_, A0L_, A1L_)                       \
    do {                                                                               \
        uint32_t wk_, wl_;                                                             \
        __asm__ volatile("ldrd %[wk], %[wl], [%[w]], #8\n\t"                             \
                         "smlad %[a0k], %[d0], %[wk], %[bk]\n\t"                         \
                         "smlad %[a1k], %[d1], %[wk], %[bk]\n\t"                         \
                         "smlad %[a0l], %[d0], %[wl], %[bl]\n\t"                         \
                         "smlad %[a1l], %[d1], %[wl], %[bl]"                              \
                         : [wk] "=&r"(wk_), [wl] "=&r"(wl_), [w] "+r"(W_), [a0k] "=&r"(A0K_), \
                           [a1k] "=&r"(A1K_), [a0l] "=&r"(A0L_), [a1l] "=&r"(A1L_)     \
                         : [d0] "r"(D0_), [d1] "r"(D1_), [bk] "r"(BK_), [bl] "r"(BL_)); \
    } while (0)
/* one channel k from one filter word (w advances by a word) */
#define NN_MAC_2x1(D0_, D1_, W_, A0K_, A1K_)                                                 \
    do {                                                                               \
        uint32_t wk_;                                                                  \
        __asm__ volatile("ldr %[wk], [%[w]], #4\n\t"                                     \
                         "smlad %[a0k], %[d0], %[wk], %[a0k]\n\t"                        \
                         "smlad %[a1k], %[d1], %[wk], %[a1k]"                             \
                         : [wk] "=&r"(wk_), [w] "+r"(W_), [a0k] "+r"(A0K_), [a1k] "+r"(A1K_) \
                         : [d0] "r"(D0_), [d1] "r"(D1_));                                   \
    } while (0)
#endif

#if NN_USE_SIMD
/* d0/d1: the next word of positions 0 and 1 in channel-pair planes (adjacent words) */
#define NN_LOAD_PAIR(D0_, D1_, X_) \
    __asm__ volatile("ldrd %[a], %[b], [%[p]], #4" : [a] "=&r"(D0_), [b] "=&r"(D1_), [p] "+r"(X_))
#endif

/* The whole filter over input rows in channel-pair planes (rows row_len values apart,
   x0 at the pass's first position): for each filter row and pair plane m, filter_w
   words. Filter words run [ky][m][kx][block]. Returns w advanced past them. */
NN_INLINE const uint32_t *nn_filter2_pairs(const int16_t *x0, int row_len, int in_w, int planes, int filter_h,
                                           int filter_w, const uint32_t *w, int block, int32_t *a0, int32_t *a1)
{
#if NN_USE_SIMD
    if (block == 4) {
        int32_t a00 = a0[0], a01 = a0[1], a02 = a0[2], a03 = a0[3];
        int32_t a10 = a1[0], a11 = a1[1], a12 = a1[2], a13 = a1[3];
        const int16_t *x = x0;
        for (int ky = 0; ky < filter_h; ++ky) {
#pragma GCC unroll 8
            for (int m = 0; m < planes; ++m) {
#pragma GCC unroll 16
                for (int kx = 0; kx < filter_w; ++kx) {
                    uint32_t d0, d1;
                    NN_LOAD_PAIR(d0, d1, x);
                    NN_MAC_2x2(d0, d1, w, a00, a10, a01, a11);
                    NN_MAC_2x2(d0, d1, w, a02, a12, a03, a13);
                }
                x += (in_w - filter_w) * 2; /* the next plane */
            }
            x += row_len - planes * in_w * 2; /* the next row */
        }
        a0[0] = a00, a0[1] = a01, a0[2] = a02, a0[3] = a03;
        a1[0] = a10, a1[1] = a11, a1[2] = a12, a1[3] = a13;
        return w;
    }
#endif
    for (int ky = 0; ky < filter_h; ++ky) {
        for (int m = 0; m < planes; ++m) {
            for (int kx = 0; kx < filter_w; ++kx) {
                const int16_t *x = x0 + ky * row_len + (m * in_w + kx) * 2;
                const uint32_t d0 = nn_read_pair(x);
                const uint32_t d1 = nn_read_pair(x + 2);
                for (int k = 0; k < block; ++k) {
                    a0[k] = nn_smlad(d0, w[k], a0[k]);
                    a1[k] = nn_smlad(d1, w[k], a1[k]);
                }
                w += block;
            }
        }
    }
    return w;
}

/* a0[k] += x0 . w[k], a1[k] += x1 . w[k] over `words` int16 pairs (a1 only if two);
   x1 is x0 + in_c. Returns w advanced past the words read. */
NN_INLINE const uint32_t *nn_dot2_s16(const int16_t *x0, int in_c, const uint32_t *w, int words, int block,
                                      int two, int32_t *a0, int32_t *a1)
{
#if NN_USE_SIMD
    if (two && block <= 4) {
        int32_t a00 = a0[0], a01 = block > 1 ? a0[1] : 0, a02 = block > 2 ? a0[2] : 0, a03 = block > 3 ? a0[3] : 0;
        int32_t a10 = a1[0], a11 = block > 1 ? a1[1] : 0, a12 = block > 2 ? a1[2] : 0, a13 = block > 3 ? a1[3] : 0;
#pragma GCC unroll 16
        for (int j = 0; j < words; ++j) {
            uint32_t d0, d1;
            NN_LOAD_2(d0, d1, x0, 2 * in_c);
            if (block == 1) {
                NN_MAC_2x1(d0, d1, w, a00, a10);
            } else if (block == 2) {
                NN_MAC_2x2(d0, d1, w, a00, a10, a01, a11);
            } else if (block == 3) {
                NN_MAC_2x2(d0, d1, w, a00, a10, a01, a11);
                NN_MAC_2x1(d0, d1, w, a02, a12);
            } else {
                NN_MAC_2x2(d0, d1, w, a00, a10, a01, a11);
                NN_MAC_2x2(d0, d1, w, a02, a12, a03, a13);
            }
        }
        a0[0] = a00, a1[0] = a10;
        if (block > 1) {
            a0[1] = a01, a1[1] = a11;
        }
        if (block > 2) {
            a0[2] = a02, a1[2] = a12;
        }
        if (block > 3) {
            a0[3] = a03, a1[3] = a13;
        }
        return w;
    }
#endif
#pragma GCC unroll 16
    for (int j = 0; j < words; ++j) {
        const uint32_t d0 = nn_read_pair(x0 + 2 * j);
        const uint32_t d1 = two ? nn_read_pair(x0 + in_c + 2 * j) : 0;
#pragma GCC unroll 6
        for (int k = 0; k < block; ++k) {
            const uint32_t wk = w[j * block + k];
            a0[k] = nn_smlad(d0, wk, a0[k]);
            if (two) {
                a1[k] = nn_smlad(d1, wk, a1[k]);
            }
        }
    }
    return w + words * block;
}

/* Channel-pair planes: an int16 row stored as [in_c / 2][in_w] words, each word the
   channels 2m, 2m + 1 of one pixel. The words of horizontally adjacent pixels are then
   adjacent, so one LDRD fetches the same taps for both positions of a pass. */
NN_INLINE void nn_conv2d_s16_store(const nn_conv2d_s16_params *p, void *out_row, int px, int c, int32_t v)
{
    if (!p->out_s16) {
        ((int8_t *)out_row)[px * p->out_c + c] = (int8_t)v;
    } else if (p->out_pairs) {
        ((int16_t *)out_row)[((c >> 1) * p->out_w + px) * 2 + (c & 1)] = (int16_t)v;
    } else {
        ((int16_t *)out_row)[px * p->out_c + c] = (int16_t)v;
    }
}

/* requantize (one SMMLAR), clamp, then the optional table */
NN_INLINE int32_t nn_conv2d_s16_output(const nn_conv2d_s16_params *p, int32_t acc2, int c)
{
    const int32_t *q = p->requant + 3 * c;
    const int shift = p->shift_all ? p->shift_all : (int)q[2];
    int32_t v = nn_requantize_doubled(acc2, q[0], q[1], shift);
    v = nn_clamp_s8(v, p->act_min, p->act_max);
    if (p->lut != 0) {
        v = p->lut[v + 128];
    }
    return v;
}

/* One output row (pooled): rows[] points at the filter_h + pool_h - 1 input rows it reads. */
NN_INLINE void nn_conv2d_s16_row(const nn_conv2d_s16_params *p, const int16_t *const *rows, void *out_row)
{
    const int two = p->pool_w == 2;
    const int32_t count = p->pool_h * p->pool_w;
    for (int px = 0; px < p->out_w; ++px) {
        const int x_off = px * p->pool_w * p->in_c;
        for (int ob = 0; ob < p->out_c; ob += p->block) {
            int32_t sums[NN_S16_MAX_BLOCK];
#pragma GCC unroll 6
            for (int k = 0; k < p->block; ++k) {
                sums[k] = p->pool_max ? INT32_MIN : 0;
            }
            for (int dy = 0; dy < p->pool_h; ++dy) {
                int32_t a0[NN_S16_MAX_BLOCK], a1[NN_S16_MAX_BLOCK];
#pragma GCC unroll 6
                for (int k = 0; k < p->block; ++k) {
                    a0[k] = a1[k] = p->bias[ob + k];
                }
                const uint32_t *w = p->filter + ob * p->filter_h * p->row_words;
                if (p->in_pairs) { /* rows[] are consecutive rows of the input buffer */
                    w = nn_filter2_pairs(rows[dy] + px * 4, p->in_w * p->in_c, p->in_w, p->in_c / 2, p->filter_h,
                                         p->filter_w, w, p->block, a0, a1);
                } else if (p->filter_h * p->row_words <= NN_S16_UNROLL_WORDS) {
#pragma GCC unroll 8
                    for (int ky = 0; ky < p->filter_h; ++ky) {
                        w = nn_dot2_s16(rows[dy + ky] + x_off, p->in_c, w, p->row_words, p->block, two, a0, a1);
                    }
                } else {
                    for (int ky = 0; ky < p->filter_h; ++ky) {
                        w = nn_dot2_s16(rows[dy + ky] + x_off, p->in_c, w, p->row_words, p->block, two, a0, a1);
                    }
                }
#pragma GCC unroll 6
                for (int k = 0; k < p->block; ++k) {
                    const int32_t v0 = nn_conv2d_s16_output(p, a0[k], ob + k);
                    const int32_t v1 = two ? nn_conv2d_s16_output(p, a1[k], ob + k) : v0;
                    if (p->pool_max) {
                        const int32_t v = v0 > v1 ? v0 : v1;
                        sums[k] = v > sums[k] ? v : sums[k];
                    } else {
                        sums[k] += two ? v0 + v1 : v0;
                    }
                }
            }
#pragma GCC unroll 6
            for (int k = 0; k < p->block; ++k) {
                int32_t r = sums[k];
                if (count > 1) { /* fused AVERAGE_POOL_2D or MAX_POOL_2D */
                    r = nn_clamp_s8(p->pool_max ? r : nn_pool_average(r, count), p->pool_act_min,
                                    p->pool_act_max);
                }
                nn_conv2d_s16_store(p, out_row, px, ob + k, r);
            }
        }
    }
}

/* The 2x2 pooling window of an input with an odd depth (LeNet's C1: one channel).
 * Positions ox and ox + 1 start an odd number of int16 values apart, so instead of
 * loading each position's words (one of them unaligned), both read the same aligned
 * words and the filter comes in two variants: as is, and shifted by in_c taps
 * (codegen lays them out side by side, [variant] innermost). Each loaded input word
 * then feeds 2 variants x `block` channels, each weight word the window's two rows:
 * four accumulators per channel, the whole window in one pass. */
NN_INLINE void nn_conv2d_s16_row_quad(const nn_conv2d_s16_params *p, const int16_t *row0, void *out_row)
{
    const int row_len = p->in_w * p->in_c;
    for (int px = 0; px < p->out_w; ++px) {
        const int16_t *const x0 = row0 + px * 2 * p->in_c;
        for (int ob = 0; ob < p->out_c; ob += p->block) {
            int32_t a[NN_S16_MAX_BLOCK][4]; /* [channel][dy * 2 + variant] */
            const uint32_t *w = p->filter + ob * p->filter_h * p->row_words * 2;
#if NN_USE_SIMD
            if (p->block == 2) {
                const int32_t b0 = p->bias[ob], b1 = p->bias[ob + 1];
                int32_t e0, o0, e1, o1, f0, q0, f1, q1;
#pragma GCC unroll 8
                for (int ky = 0; ky < p->filter_h; ++ky) {
                    const int16_t *x = x0 + ky * row_len;
#pragma GCC unroll 16
                    for (int j = 0; j < p->row_words; ++j) {
                        uint32_t d0, d1;
                        NN_LOAD_2(d0, d1, x, 2 * row_len); /* rows ky and ky + 1 */
                        if (ky == 0 && j == 0) {
                            NN_MAC_2x2_FROM(d0, d1, w, b0, b0, e0, e1, o0, o1);
                            NN_MAC_2x2_FROM(d0, d1, w, b1, b1, f0, f1, q0, q1);
                        } else {
                            NN_MAC_2x2(d0, d1, w, e0, e1, o0, o1);
                            NN_MAC_2x2(d0, d1, w, f0, f1, q0, q1);
                        }
                    }
                }
                a[0][0] = e0, a[0][1] = o0, a[0][2] = e1, a[0][3] = o1;
                a[1][0] = f0, a[1][1] = q0, a[1][2] = f1, a[1][3] = q1;
            } else
#endif
            {
                for (int k = 0; k < p->block; ++k) {
                    a[k][0] = a[k][1] = a[k][2] = a[k][3] = p->bias[ob + k];
                }
                for (int ky = 0; ky < p->filter_h; ++ky) {
                    for (int j = 0; j < p->row_words; ++j) {
                        const uint32_t d0 = nn_read_pair(x0 + ky * row_len + 2 * j);
                        const uint32_t d1 = nn_read_pair(x0 + (ky + 1) * row_len + 2 * j);
                        for (int k = 0; k < p->block; ++k) {
                            const uint32_t even = w[0], odd = w[1];
                            w += 2;
                            a[k][0] = nn_smlad(d0, even, a[k][0]);
                            a[k][1] = nn_smlad(d0, odd, a[k][1]);
                            a[k][2] = nn_smlad(d1, even, a[k][2]);
                            a[k][3] = nn_smlad(d1, odd, a[k][3]);
                        }
                    }
                }
            }
            int32_t pooled[NN_S16_MAX_BLOCK];
#pragma GCC unroll 6
            for (int k = 0; k < p->block; ++k) {
                const int c = ob + k;
                const int32_t v0 = nn_conv2d_s16_output(p, a[k][0], c), v1 = nn_conv2d_s16_output(p, a[k][1], c);
                const int32_t v2 = nn_conv2d_s16_output(p, a[k][2], c), v3 = nn_conv2d_s16_output(p, a[k][3], c);
                int32_t r;
                if (p->pool_max) {
                    const int32_t m01 = v0 > v1 ? v0 : v1, m23 = v2 > v3 ? v2 : v3;
                    r = m01 > m23 ? m01 : m23;
                } else {
                    r = nn_pool_average(v0 + v1 + v2 + v3, 4);
                }
                pooled[k] = nn_clamp_s8(r, p->pool_act_min, p->pool_act_max);
            }
            if (p->out_s16 && p->out_pairs && p->block == 2) {
                /* the block is one channel pair: one word of its plane */
                const uint32_t word = NN_PAIR(pooled[0], pooled[1]);
                memcpy((int16_t *)out_row + ((ob >> 1) * p->out_w + px) * 2, &word, sizeof word);
            } else {
#pragma GCC unroll 6
                for (int k = 0; k < p->block; ++k) {
                    nn_conv2d_s16_store(p, out_row, px, ob + k, pooled[k]);
                }
            }
        }
    }
}

/* The whole layer. input16: the int16 input (in_s16), or NULL: then input8 is read,
   and each output row first widens the input rows it needs into `window`
   ((filter_h + pool_h - 1) * in_w * in_c int16 values, plus one word). */
NN_INLINE void nn_conv2d_s16(const nn_conv2d_s16_params *p, const int16_t *input16, const int8_t *input8,
                             int16_t *window, void *output)
{
    const int16_t *rows[NN_S16_MAX_ROWS];
    const int row_len = p->in_w * p->in_c;
    const int out_row_len = p->out_w * p->out_c;
    const int span = p->filter_h + p->pool_h - 1;
    for (int y = 0; y < p->out_h; ++y) {
        const int16_t *first = input16 + y * p->pool_h * row_len;
        if (!p->in_s16) {
            nn_widen_s8_s16(input8 + y * p->pool_h * row_len, window, span * row_len, 1);
            first = window;
        }
        if (p->quad) {
            if (p->out_s16) {
                nn_conv2d_s16_row_quad(p, first, (int16_t *)output + y * out_row_len);
            } else {
                nn_conv2d_s16_row_quad(p, first, (int8_t *)output + y * out_row_len);
            }
            continue;
        }
        for (int i = 0; i < span; ++i) {
            rows[i] = first + i * row_len;
        }
        if (p->out_s16) {
            nn_conv2d_s16_row(p, rows, (int16_t *)output + y * out_row_len);
        } else {
            nn_conv2d_s16_row(p, rows, (int8_t *)output + y * out_row_len);
        }
    }
}

#endif /* NN_CONV2D_S16_H */
