/*
 * edgeq integer kernels: gemmlowp's fixed-point exp and reciprocal, shared by the softmax,
 * log-softmax, division and L2 normalization kernels; mirrors edgeq/intmath_softmax.py.
 */
#ifndef EDGEQ_SOFTMAX_SUPPORT_H
#define EDGEQ_SOFTMAX_SUPPORT_H

#include "edgeq_support.h"

#define EDGEQ_SOFTMAX_DIFF_INTEGER_BITS 5      /* exp() input is Q5.26 */
#define EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS 12    /* sum of exps is Q12.19 */

/* gemmlowp constants (raw Q0.31 unless stated). */
#define EDGEQ_EXP_MINUS_ONE_EIGHTH 1895147668  /* exp(-1/8) */
#define EDGEQ_ONE_THIRD 715827883              /* 1/3 */
#define EDGEQ_48_OVER_17_Q2 1515870810         /* 48/17 in Q2.29 */
#define EDGEQ_NEG_32_OVER_17_Q2 (-1010580540)  /* -32/17 in Q2.29 */

/* int32 addition / subtraction that wraps like gemmlowp's non-saturating Add / Sub. */
static inline int32_t edgeq_wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t edgeq_wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent>. */
static inline int32_t edgeq_saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    int32_t threshold;
    if (exponent == 0) {
        return x;
    }
    if (exponent < 0) {
        return edgeq_rounding_divide_by_pot(x, -exponent);
    }
    threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a Q0.31 value in [-1/4, 0): 4th-order Taylor series around -1/8. */
static inline int32_t edgeq_exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t x = edgeq_wrap_add(a, (int32_t)1 << 28);   /* a + 1/8 */
    const int32_t x2 = edgeq_srdhm(x, x);
    const int32_t x3 = edgeq_srdhm(x2, x);
    const int32_t x4 = edgeq_srdhm(x2, x2);
    const int32_t x4_over_4 = edgeq_rounding_divide_by_pot(x4, 2);
    const int32_t poly = edgeq_rounding_divide_by_pot(
        edgeq_wrap_add(edgeq_srdhm(edgeq_wrap_add(x4_over_4, x3), EDGEQ_ONE_THIRD), x2), 1);
    return edgeq_wrap_add(EDGEQ_EXP_MINUS_ONE_EIGHTH,
                    edgeq_srdhm(EDGEQ_EXP_MINUS_ONE_EIGHTH, edgeq_wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values for a Q5.26 input <= 0; Q0.31 result. */
static inline int32_t edgeq_exp_on_negative_values_q5(int32_t a)
{
    static const int32_t barrel_multipliers[7] = {
        1672461947,  /* exp(-1/4) */
        1302514674,  /* exp(-1/2) */
        790015084,   /* exp(-1) */
        290630308,   /* exp(-2) */
        39332535,    /* exp(-4) */
        720401,      /* exp(-8) */
        242          /* exp(-16) */
    };
    const int32_t frac_bits = 31 - EDGEQ_SOFTMAX_DIFF_INTEGER_BITS;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = edgeq_wrap_sub(a & (one_quarter - 1), one_quarter);
    const int32_t remainder = edgeq_wrap_sub(a_mod_quarter_minus_one_quarter, a);
    int32_t result = edgeq_exp_on_interval_between_negative_one_quarter_and_0_excl(
        edgeq_saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter,
                                            EDGEQ_SOFTMAX_DIFF_INTEGER_BITS));
    int32_t k;
    for (k = 0; k < 7; ++k) {
        /* bit of 2^(k - 2) in Q5.26 */
        if (remainder & ((int32_t)1 << (frac_bits - 2 + k))) {
            result = edgeq_srdhm(result, barrel_multipliers[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp RoundingHalfSum: (a + b) / 2 rounded to nearest, ties away from zero. */
static inline int32_t edgeq_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* 1 / (1 + a) for a Q0.31 value in [0, 1), Q0.31 result (three Newton-Raphson steps). */
static inline int32_t edgeq_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = edgeq_rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = edgeq_wrap_add(EDGEQ_48_OVER_17_Q2,
                         edgeq_srdhm(half_denominator, EDGEQ_NEG_32_OVER_17_Q2));
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = edgeq_srdhm(half_denominator, x);
        const int32_t one_minus = edgeq_wrap_sub(one_q2, half_denominator_times_x);
        x = edgeq_wrap_add(x, edgeq_saturating_rounding_multiply_by_pot(edgeq_srdhm(x, one_minus), 2));
    }
    return edgeq_saturating_rounding_multiply_by_pot(x, 1);
}

static inline int32_t edgeq_count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    if (x == 0u) {
        return 32;
    }
#if defined(__GNUC__)
    n = (int32_t)__builtin_clz(x);
#else
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
#endif
    return n;
}

/* TFLite GetReciprocal of a positive value with `integer_digits` integer bits: Q0.31
 * reciprocal and num_bits_over_unit.  (A zero x is undefined in TFLite: the shift by 32 is
 * masked to 0 here, as x86 does.) */
static inline int32_t edgeq_get_reciprocal_q(int32_t x, int32_t integer_digits,
                                             int32_t *num_bits_over_unit)
{
    const int32_t headroom_plus_one = edgeq_count_leading_zeros((uint32_t)x);
    const uint32_t shifted = (uint32_t)x << (headroom_plus_one & 31);
    *num_bits_over_unit = integer_digits - headroom_plus_one;
    return edgeq_one_over_one_plus_x_for_x_in_0_1((int32_t)(shifted - 0x80000000u));
}

/* TFLite GetReciprocal on a Q12.19 sum (softmax): Q0.31 reciprocal and num_bits_over_unit. */
static inline int32_t edgeq_get_reciprocal(int32_t x, int32_t *num_bits_over_unit)
{
    return edgeq_get_reciprocal_q(x, EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS, num_bits_over_unit);
}

#endif /* EDGEQ_SOFTMAX_SUPPORT_H */
