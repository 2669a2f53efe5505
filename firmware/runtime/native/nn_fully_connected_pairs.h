/* nn_fully_connected_pairs.h: FULLY_CONNECTED (+ TANH) with int8 weights, two output
 * channels per weight word.
 *
 * The trick (channel pairs): codegen stores the weights of channels A and B for
 * input taps i and i' in one word, as the int16 halves wA[i] + 256 * wB[i] and
 * wA[i'] + 256 * wB[i'] (the byte of B stored as wB - [wA < 0] so the halves hold
 * exactly that value). With the input widened to int16 pairs (x[i], x[i']):
 *     accA += SMLAD(x, SXTB16(w))  ->  x . wA
 *     accW += SMLAD(x, w)          ->  x . wA + 256 * x . wB
 * so one load and one SXTB16 feed four multiply-accumulates, and at the end
 * x . wB = (accW - accA) / 256, exact because codegen checks 256 * |x . wB| < 2^31
 * for every possible input (the sums wrap modulo 2^32 in between, which is harmless).
 * Weights stay int8 in flash; the input is widened (and doubled, see nn_requantize.h)
 * once per layer. `block` channel pairs share each loaded input word.
 */
#ifndef NN_FULLY_CONNECTED_PAIRS_H
#define NN_FULLY_CONNECTED_PAIRS_H

#include "nn_requantize.h"

#define NN_PAIRS_MAX_BLOCK 4

typedef struct {
    int in_words;            /* input int16 pairs (in_features / 2, rounded up) */
    int out_features;        /* even */
    int block;               /* channel pairs per pass (divides out_features / 2) */
    const uint32_t *weights; /* [out_features / (2 * block)][in_words][block] channel-pair words */
    const int32_t *bias;     /* [out_features] doubled, input zero point folded in */
    const int32_t *requant;  /* [out_c][3]: multiplier M, offset, right shift r (nn_requantize.h) */
    int shift_all;           /* r when every channel shares it (a constant), else 0 */
    int32_t act_min, act_max;
    const int8_t *lut; /* NULL or 256 entries indexed by value + 128 */
} nn_fc_pairs_params;

static inline uint32_t nn_sxtb16(uint32_t v)
{
#if NN_USE_SIMD
    return __sxtb16(v);
#else
    return (uint32_t)(uint16_t)(int16_t)(int8_t)(v & 0xFFu) |
           ((uint32_t)(uint16_t)(int16_t)(int8_t)((v >> 16) & 0xFFu) << 16);
#endif
}

#if NN_USE_SIMD
/* accA += d . SXTB16(w), accW += d . w for the next channel-pair word (w advances);
   written out so the accumulators stay in registers (see nn_conv2d_s16.h). */
#define NN_MAC_PAIR(D_, W_, ACC_A_, ACC_W_)                                                                  \
    do {                                                                                                     \
        uint32_t wk_, lo_;                                                                                   \
        __asm__ volatile(                                                                                    \
            "ldr %[wk], [%[w]], #4\n\t"                                                                      \
            "sxtb16 %[lo], %[wk]\n\t"                                                                        \
            "smlad %[aa], %[d], %[lo], %[aa]\n\t"                                                            \
            "smlad %[aw], %[d], %[wk], %[aw]"                                                                \
            : [wk] "=&r"(wk_), [lo] "=&r"(lo_), [w] "+r"(W_), [aa] "+r"(ACC_A_), [aw] "+r"(ACC_W_)           \
            : [d] "r"(D_));                                                                                  \
    } while (0)
/* the same for two consecutive channel-pair words (one LDRD) */
#define NN_MAC_PAIR2(D_, W_, AA0_, AW0_, AA1_, AW1_)                                                         \
    do {                                                                                                     \
        uint32_t w0_, w1_, lo_;                                                                              \
        __asm__ volatile("ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                 \
                         "sxtb16 %[lo], %[w0]\n\t"                                                           \
                         "smlad %[aa0], %[d], %[lo], %[aa0]\n\t"                                             \
                         "smlad %[aw0], %[d], %[w0], %[aw0]\n\t"                                             \
                         "sxtb16 %[lo], %[w1]\n\t"                                                           \
                         "smlad %[aa1], %[d], %[lo], %[aa1]\n\t"                                             \
                         "smlad %[aw1], %[d], %[w1], %[aw1]"                                                 \
                         : [w0] "=&r"(w0_), [w1] "=&r"(w1_), [lo] "=&r"(lo_), [w] "+r"(W_),                  \
                           [aa0] "+r"(AA0_), [aw0] "+r"(AW0_), [aa1] "+r"(AA1_), [aw1] "+r"(AW1_)            \
                         : [d] "r"(D_));                                                                     \
    } while (0)
#endif

NN_INLINE int32_t nn_fc_pairs_output(const nn_fc_pairs_params *p, int32_t acc2, int c)
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

/* input2: the layer input widened to int16 and doubled, zero-padded to in_words pairs */
NN_INLINE void nn_fully_connected_pairs_s8(const nn_fc_pairs_params *p, const int16_t *input2, int8_t *output)
{
    const uint32_t *w = p->weights;
    for (int o = 0; o < p->out_features; o += 2 * p->block) {
        int32_t acc_a[NN_PAIRS_MAX_BLOCK], acc_w[NN_PAIRS_MAX_BLOCK];
#pragma GCC unroll 4
        for (int k = 0; k < p->block; ++k) {
            acc_a[k] = acc_w[k] = p->bias[o + 2 * k];
        }
#if NN_USE_SIMD
        if (p->block <= 4) {
            int32_t a0 = acc_a[0], w0 = acc_w[0];
            int32_t a1 = p->block > 1 ? acc_a[1] : 0, w1 = p->block > 1 ? acc_w[1] : 0;
            int32_t a2 = p->block > 2 ? acc_a[2] : 0, w2 = p->block > 2 ? acc_w[2] : 0;
            int32_t a3 = p->block > 3 ? acc_a[3] : 0, w3 = p->block > 3 ? acc_w[3] : 0;
            const int16_t *x = input2;
#pragma GCC unroll 4
            for (int j = 0; j < p->in_words; ++j) {
                uint32_t d;
                __asm__ volatile("ldr %[d], [%[x]], #4" : [d] "=r"(d), [x] "+r"(x));
                if (p->block == 1) {
                    NN_MAC_PAIR(d, w, a0, w0);
                } else if (p->block == 2) {
                    NN_MAC_PAIR2(d, w, a0, w0, a1, w1);
                } else if (p->block == 3) {
                    NN_MAC_PAIR2(d, w, a0, w0, a1, w1);
                    NN_MAC_PAIR(d, w, a2, w2);
                } else {
                    NN_MAC_PAIR2(d, w, a0, w0, a1, w1);
                    NN_MAC_PAIR2(d, w, a2, w2, a3, w3);
                }
            }
            acc_a[0] = a0, acc_w[0] = w0;
            if (p->block > 1) {
                acc_a[1] = a1, acc_w[1] = w1;
            }
            if (p->block > 2) {
                acc_a[2] = a2, acc_w[2] = w2;
            }
            if (p->block > 3) {
                acc_a[3] = a3, acc_w[3] = w3;
            }
        } else
#endif
        {
            for (int j = 0; j < p->in_words; ++j) {
                const uint32_t x = nn_read_pair(input2 + 2 * j);
#pragma GCC unroll 4
                for (int k = 0; k < p->block; ++k) {
                    const uint32_t wk = w[k];
                    acc_a[k] = nn_smlad(x, nn_sxtb16(wk), acc_a[k]);
                    acc_w[k] = nn_smlad(x, wk, acc_w[k]);
                }
                w += p->block;
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < p->block; ++k) {
            const int a = o + 2 * k;
            const int32_t acc_b = p->bias[a + 1] + ((int32_t)((uint32_t)acc_w[k] - (uint32_t)acc_a[k]) >> 8);
            output[a] = (int8_t)nn_fc_pairs_output(p, acc_a[k], a);
            output[a + 1] = (int8_t)nn_fc_pairs_output(p, acc_b, a + 1);
        }
    }
}

#endif /* NN_FULLY_CONNECTED_PAIRS_H */
