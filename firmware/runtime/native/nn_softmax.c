/* nn_softmax.c: int8 SOFTMAX of the native runtime.
 *
 * A faithful C port of tflite::reference_ops::Softmax (int8 in, int8 out) as
 * TFLM runs it, including the gemmlowp fixed-point helpers it uses
 * (exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1, Rescale) and
 * tflite::GetReciprocal. Inputs are rescaled to Q5.26 ("scaled diff"), the
 * sum of exponentials is accumulated in Q12.19. Only 10 values per inference
 * go through here, so clarity wins over speed.
 *
 * Ported from TensorFlow Lite Micro and gemmlowp, Apache License 2.0 (see NOTICE).
 */
#include "nn_softmax.h"

#define NN_SOFTMAX_CACHE 16 /* rows up to this long compute each exp once */

enum {
    kScaledDiffIntegerBits = 5,
    kAccumulationIntegerBits = 12,
};

/* int32 adds of gemmlowp are plain adds; wrap instead of undefined behaviour */
static int32_t add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t mul_fp(int32_t a, int32_t b)
{
    return nn_sat_rounding_doubling_high_mul(a, b);
}

/* gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0 */
static int32_t saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((UINT32_C(1) << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* gemmlowp::RoundingHalfSum(int32, int32) */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883; /* 1/3 */
    const int32_t x = add_wrap(a, 1 << 28);      /* Taylor expansion around -1/8 */
    const int32_t x2 = mul_fp(x, x);
    const int32_t x3 = mul_fp(x2, x);
    const int32_t x4 = mul_fp(x2, x2);
    const int32_t x4_over_4 = nn_rounding_divide_by_pot(x4, 2);
    const int32_t x4_over_24_plus_x3_over_6_plus_x2_over_2 =
        nn_rounding_divide_by_pot(add_wrap(mul_fp(add_wrap(x4_over_4, x3), constant_1_over_3), x2), 1);
    return add_wrap(constant_term,
                    mul_fp(constant_term, add_wrap(x, x4_over_24_plus_x3_over_6_plus_x2_over_2)));
}

/* gemmlowp::exp_on_negative_values for a Q5.26 input, Q0.31 result */
static int32_t exp_on_negative_values_q5(int32_t a)
{
    enum { kIntegerBits = kScaledDiffIntegerBits, kFractionalBits = 31 - kScaledDiffIntegerBits };
    const int32_t one_quarter = 1 << (kFractionalBits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    /* Rescale<0> from 5 integer bits: saturating multiply by 2^5 */
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_shift_left(a_mod_quarter_minus_one_quarter, kIntegerBits));
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;

    /* barrel shifter: exp(-2^k) for each set bit of the remainder, k = -2..4 */
    static const int32_t multipliers[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8) */
        242,        /* exp(-16) */
    };
    for (int k = -2; k <= 4; ++k) {
        if (kIntegerBits > k && (remainder & (1 << (kFractionalBits + k))) != 0) {
            result = mul_fp(result, multipliers[k + 2]);
        }
    }
    /* (the clamp to 0 below -32 only exists for more than 5 integer bits) */
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp::one_over_one_plus_x_for_x_in_0_1: Newton-Raphson in Q2.29 */
static int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t constant_48_over_17 = 1515870810;
    const int32_t constant_neg_32_over_17 = -1010580540;
    const int32_t one_q2 = 1 << 29;
    int32_t x = add_wrap(constant_48_over_17, mul_fp(half_denominator, constant_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = mul_fp(half_denominator, x);
        const int32_t one_minus_half_denominator_times_x = one_q2 - half_denominator_times_x;
        /* Q4 product rescaled to Q2: saturating multiply by 4 */
        x = add_wrap(x, saturating_shift_left(mul_fp(x, one_minus_half_denominator_times_x), 2));
    }
    /* ExactMulByPot<-1> (Q2 -> Q1, same raw) then Rescale<0>: saturating multiply by 2 */
    return saturating_shift_left(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while ((x & UINT32_C(0x80000000)) == 0) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* tflite::GetReciprocal */
static int32_t get_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit)
{
    const int headroom_plus_one = count_leading_zeros((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const int32_t shifted_sum_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (UINT32_C(1) << 31));
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
}

/* MultiplyByQuantizedMultiplierGreaterThanOne, double-rounding build */
static int32_t rescale_input_diff(int32_t diff, int32_t multiplier, int32_t left_shift)
{
    return mul_fp((int32_t)((uint32_t)diff << left_shift), multiplier);
}

void nn_softmax_s8(const nn_softmax_params *p, const int8_t *input, int8_t *output)
{
    for (int i = 0; i < p->outer; ++i) {
        const int8_t *in = input + i * p->depth;
        int8_t *out = output + i * p->depth;
        int32_t max_in_row = -128;
        for (int c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }

        /* exp of each difference, kept for the output pass when the row is short enough
           (TFLM computes it twice; the values are the same) */
        int32_t exps[NN_SOFTMAX_CACHE];
        const int cached = p->depth <= NN_SOFTMAX_CACHE;
        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            int32_t exp_in_0 = 0;
            if (diff >= p->diff_min) {
                const int32_t scaled = rescale_input_diff(diff, p->input_multiplier, p->input_left_shift);
                exp_in_0 = exp_on_negative_values_q5(scaled);
                sum_of_exps =
                    add_wrap(sum_of_exps, nn_rounding_divide_by_pot(exp_in_0, kAccumulationIntegerBits));
            }
            if (cached) {
                exps[c] = exp_in_0;
            }
        }

        int num_bits_over_unit;
        const int32_t shifted_scale =
            get_reciprocal(sum_of_exps, kAccumulationIntegerBits, &num_bits_over_unit);
        const int exponent = num_bits_over_unit + 31 - 8;

        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t exp_in_0 = cached ? exps[c]
                                                : exp_on_negative_values_q5(rescale_input_diff(
                                                      diff, p->input_multiplier, p->input_left_shift));
                const int32_t unsat = nn_rounding_divide_by_pot(mul_fp(shifted_scale, exp_in_0), exponent);
                out[c] = (int8_t)nn_clamp(unsat - 128, -128, 127);
            } else {
                out[c] = -128;
            }
        }
    }
}
