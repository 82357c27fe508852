/*
 * edgeq kernel: TFLite's reference int8 log-softmax (int8 in, int8 out with scale 16/256 and
 * zero point 127): gemmlowp's fixed-point exp, TFLite's log_x_for_x_greater_than_or_equal_to_1.
 * Mirrors edgeq/intmath_softmax.py (log_softmax_int8).
 */
#include "edgeq_softmax.h"
#include "edgeq_softmax_support.h"

#define EDGEQ_LOG_SOFTMAX_OUTPUT_INTEGER_BITS 4
#define EDGEQ_LOG_ACCUM_INTEGER_BITS (EDGEQ_SOFTMAX_DIFF_INTEGER_BITS + 1)

/* TFLite / gemmlowp constants of log_x_for_x_greater_than_or_equal_to_1 (raw Q0.31). */
#define EDGEQ_LOG_2 1488522236             /* log(2) */
#define EDGEQ_SQRT_SQRT_HALF 1805811301    /* sqrt(sqrt(0.5)) */
#define EDGEQ_SQRT_HALF 1518500250         /* sqrt(0.5) */
#define EDGEQ_ONE_QUARTER 536870912        /* 1/4 */
#define EDGEQ_ALPHA_N 117049297            /* 11/240 * sqrt(sqrt(2)) */
#define EDGEQ_ALPHA_D 127690142            /* 1/20 * sqrt(sqrt(2)) */
#define EDGEQ_ALPHA_I 1057819769           /* 2/sqrt(sqrt(2)) - sqrt(sqrt(2)) */
#define EDGEQ_ALPHA_F 638450708            /* 1/4 * sqrt(sqrt(2)) */

/* TFLite SaturatingRoundingMultiplyByPOTParam for a run-time exponent in [0, 31]. */
static int32_t multiply_by_pot_param(int32_t x, int32_t exponent)
{
    int32_t threshold;
    if (exponent == 0) {
        return x;
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

static int32_t saturating_add(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a + b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

static int32_t saturating_sub(int32_t a, int32_t b)
{
    const int64_t s = (int64_t)a - b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

/* log(x) of a Q12.19 value >= 1 as Q5.26.  Returns 1 (TFLite's run-time exponent check fails)
 * when x is negative, i.e. the int32 sum of exps wrapped. */
static int log_q12_to_q5(int32_t x, int32_t *result)
{
    const int32_t accum_bits = EDGEQ_LOG_ACCUM_INTEGER_BITS;
    const int32_t shifted_quarter = edgeq_rounding_divide_by_pot(EDGEQ_ONE_QUARTER, accum_bits);
    const int32_t z_a_headroom_plus_1 = edgeq_count_leading_zeros((uint32_t)x);
    int32_t r_a_tmp, r_a_raw, z_a_pow_2_adj, z_b, z_b_headroom, r_b_raw, z_b_pow_2_adj;
    int32_t r, z_pow_2_adj, p, q, common_sq, num, denom_minus_one_0, recip_denom, num_scaled;

    if (z_a_headroom_plus_1 < 1) {
        return 1;
    }
    r_a_tmp = multiply_by_pot_param(x, z_a_headroom_plus_1 - 1);
    r_a_raw = multiply_by_pot_param(edgeq_srdhm(r_a_tmp, EDGEQ_SQRT_HALF), 1);
    z_a_pow_2_adj = saturating_add(
        multiply_by_pot_param(EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS - z_a_headroom_plus_1, 31 - accum_bits),
        shifted_quarter);
    z_b = edgeq_srdhm(x, EDGEQ_SQRT_HALF);
    z_b_headroom = edgeq_count_leading_zeros((uint32_t)z_b) - 1;
    if (z_b_headroom < 0) {
        return 1;
    }
    r_b_raw = multiply_by_pot_param(x, z_b_headroom);
    z_b_pow_2_adj = saturating_sub(
        multiply_by_pot_param(EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS - z_b_headroom, 31 - accum_bits),
        shifted_quarter);
    r = r_a_raw < r_b_raw ? r_a_raw : r_b_raw;
    z_pow_2_adj = z_a_pow_2_adj > z_b_pow_2_adj ? z_a_pow_2_adj : z_b_pow_2_adj;
    p = edgeq_rounding_half_sum(r, EDGEQ_SQRT_SQRT_HALF);
    q = edgeq_wrap_sub(r, EDGEQ_SQRT_SQRT_HALF);
    q = edgeq_wrap_add(q, q);
    common_sq = edgeq_srdhm(q, q);
    num = edgeq_wrap_add(edgeq_srdhm(q, r), edgeq_srdhm(edgeq_srdhm(q, common_sq), EDGEQ_ALPHA_N));
    denom_minus_one_0 = edgeq_wrap_add(
        edgeq_srdhm(p, edgeq_wrap_add(edgeq_wrap_add(EDGEQ_ALPHA_I, q),
                                      edgeq_srdhm(EDGEQ_ALPHA_D, common_sq))),
        edgeq_srdhm(EDGEQ_ALPHA_F, q));
    recip_denom = edgeq_one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0);
    num_scaled = edgeq_rounding_divide_by_pot(num, accum_bits);
    *result = edgeq_saturating_rounding_multiply_by_pot(
        edgeq_wrap_add(edgeq_srdhm(z_pow_2_adj, EDGEQ_LOG_2), edgeq_srdhm(num_scaled, recip_denom)),
        accum_bits - EDGEQ_SOFTMAX_DIFF_INTEGER_BITS);
    return 0;
}

int edgeq_log_softmax_s8(const edgeq_log_softmax_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->depth;
    const int32_t inner = p->inner;
    const int32_t out_shift = 31 - EDGEQ_SOFTMAX_DIFF_INTEGER_BITS - EDGEQ_LOG_SOFTMAX_OUTPUT_INTEGER_BITS;
    int32_t o, i, d;

    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int8_t *x = input + o * depth * inner + i;
            int8_t *y = output + o * depth * inner + i;
            int32_t max = EDGEQ_INT8_MIN;
            int32_t sum = 0;
            int32_t log_sum, adjusted_diff_min, reverse;

            for (d = 0; d < depth; ++d) {
                max = x[d * inner] > max ? x[d * inner] : max;
            }
            for (d = 0; d < depth; ++d) {
                const int32_t diff = (int32_t)x[d * inner] - max;
                if (diff >= p->diff_min) {
                    const int32_t diff_q5 = edgeq_multiply_by_quantized_multiplier(
                        diff, p->input_multiplier, p->input_left_shift);
                    /* Q0.31 -> Q12.19, wrapping int32 sum */
                    sum = edgeq_wrap_add(sum, edgeq_rounding_divide_by_pot(
                        edgeq_exp_on_negative_values_q5(diff_q5), EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS));
                }
            }
            if (log_q12_to_q5(sum, &log_sum) != 0) {
                return 1;
            }
            reverse = edgeq_multiply_by_quantized_multiplier(
                edgeq_wrap_add(log_sum, INT32_MIN), p->reverse_scaling_divisor,
                p->reverse_scaling_left_shift);
            adjusted_diff_min = p->diff_min - 1 > reverse ? p->diff_min - 1 : reverse;
            for (d = 0; d < depth; ++d) {
                const int32_t diff = (int32_t)x[d * inner] - max;
                int32_t out = EDGEQ_INT8_MIN;
                if (diff > adjusted_diff_min) {
                    const int32_t diff_q5 = edgeq_multiply_by_quantized_multiplier(
                        diff, p->input_multiplier, p->input_left_shift);
                    out = edgeq_rounding_divide_by_pot(edgeq_wrap_sub(diff_q5, log_sum), out_shift) + 127;
                    out = out < EDGEQ_INT8_MIN ? EDGEQ_INT8_MIN : out;
                    out = out > EDGEQ_INT8_MAX ? EDGEQ_INT8_MAX : out;
                }
                y[d * inner] = (int8_t)out;
            }
        }
    }
    return 0;
}
