/* edgeq kernel: int8 L2 normalization along one axis (TFLite L2_NORMALIZATION; mirrors
 * edgeq/intmath_elementwise.py: l2_normalize_int8, inv_sqrt_multiplier_exp). */
#include "edgeq_normalize.h"
#include "edgeq_softmax_support.h"

/* The output is in 1/128 steps: the requantization shift gains 7 bits. */
#define EDGEQ_L2_OUTPUT_SHIFT 7
/* gemmlowp constants of the inverse square root: 1.5 in Q3.28, sqrt(2) / 2 in Q0.31 */
#define EDGEQ_THREE_HALVES_Q3 ((1 << 28) + (1 << 27))
#define EDGEQ_HALF_SQRT_2_Q0 1518500250
#define EDGEQ_ONE_Q3 (1 << 28)
#define EDGEQ_INV_SQRT_NEWTON_STEPS 5

/* TFLite GetInvSqrtQuantizedMultiplierExp with reverse_shift -1: returns M and sets *shift
 * (a left shift, <= 0) with M * 2^(*shift - 31) ~ 1 / sqrt(x); x <= 1 gives (INT32_MAX, 0). */
static int32_t edgeq_inv_sqrt_multiplier_exp(int32_t x, int32_t *shift)
{
    int32_t exponent = 11;
    int32_t left_pairs, half_input, y, i;

    if (x <= 1) {
        *shift = 0;
        return INT32_MAX;
    }
    while (x >= (1 << 29)) {
        x /= 4;
        ++exponent;
    }
    left_pairs = (edgeq_count_leading_zeros((uint32_t)x) - 1) / 2 - 1;
    exponent -= left_pairs;
    x <<= 2 * left_pairs;
    /* Newton-Raphson on 1 / sqrt(x) in gemmlowp FixedPoint<int32, 3>, from 1 */
    half_input = edgeq_rounding_divide_by_pot(x >> 1, 1);
    y = EDGEQ_ONE_Q3;
    for (i = 0; i < EDGEQ_INV_SQRT_NEWTON_STEPS; ++i) {
        const int32_t y3 = edgeq_saturating_rounding_multiply_by_pot(
            edgeq_srdhm(edgeq_srdhm(y, y), y), 6);                     /* Q9 -> Q3 */
        y = edgeq_saturating_rounding_multiply_by_pot(
            edgeq_wrap_sub(edgeq_srdhm(EDGEQ_THREE_HALVES_Q3, y), edgeq_srdhm(half_input, y3)), 3);
    }
    y = edgeq_srdhm(y, EDGEQ_HALF_SQRT_2_Q0);
    if (exponent < 0) {
        y = (int32_t)((uint32_t)y << -exponent);
        exponent = 0;
    }
    *shift = -exponent;
    return y;
}

void edgeq_l2_normalize_s8(const edgeq_l2_normalize_params *p, const int8_t *input,
                           int8_t *EDGEQ_RESTRICT output)
{
    int32_t o, i, d;

    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int32_t base = o * p->depth * p->inner + i;
            uint32_t sum_of_squares = 0u;     /* wraps like TFLite's int32 sum */
            int32_t multiplier, shift;
            for (d = 0; d < p->depth; ++d) {
                const int32_t v = (int32_t)input[base + d * p->inner] + p->input_offset;
                sum_of_squares += (uint32_t)(v * v);
            }
            multiplier = edgeq_inv_sqrt_multiplier_exp((int32_t)sum_of_squares, &shift);
            for (d = 0; d < p->depth; ++d) {
                const int32_t v = (int32_t)input[base + d * p->inner] + p->input_offset;
                output[base + d * p->inner] = edgeq_requantize(
                    v, multiplier, shift + EDGEQ_L2_OUTPUT_SHIFT, 0, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
            }
        }
    }
}
