/* edgeq kernel: int8 division with numpy broadcasting (TFLite DIV, DivElementwise: the
 * numerator normalised by its headroom times the fixed-point reciprocal of the denominator,
 * then one requantization and a rounding shift). */
#include "edgeq_arithmetic.h"
#include "edgeq_softmax_support.h"

/* GetReciprocal's integer digits for an int32 denominator (Q31.0) */
#define EDGEQ_DIV_DENOMINATOR_INTEGER_BITS 31
/* shifts past this many bits leave 0 or -1 before rounding (as past 31: int64 arithmetic) */
#define EDGEQ_DIV_MAX_SHIFT 62

/* TFLite CountLeadingSignBits<int32>: redundant sign bits of x (31 for 0 and -1). */
static inline int32_t edgeq_count_leading_sign_bits(int32_t x)
{
    if (x == 0) {
        return 31;
    }
    if (x > 0) {
        return edgeq_count_leading_zeros((uint32_t)x) - 1;
    }
    if (x == INT32_MIN) {
        return 0;
    }
    return edgeq_count_leading_zeros(2u * (uint32_t)(-x) - 1u);
}

/* x / 2^exponent rounded to nearest, ties away from zero, for any exponent >= 0: gemmlowp's
 * RoundingDivideByPOT where it is defined (up to 31), its mathematics beyond. */
static inline int32_t edgeq_rounding_divide_by_pot_wide(int32_t x, int32_t exponent)
{
    const int32_t e = exponent < EDGEQ_DIV_MAX_SHIFT ? exponent : EDGEQ_DIV_MAX_SHIFT;
    const int64_t mask = ((int64_t)1 << e) - 1;
    const int64_t remainder = (int64_t)x & mask;
    const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> e) + (remainder > threshold ? 1 : 0));
}

/* One quotient: numerator a over a non-zero denominator b (both already offset). */
static inline int32_t edgeq_divide(int32_t a, int32_t b, int32_t multiplier, int32_t shift)
{
    int32_t bits_over_unit, reciprocal, headroom, quotient, right_shift;

    if (b < 0) {
        a = -a;
        b = -b;
    }
    reciprocal = edgeq_get_reciprocal_q(b, EDGEQ_DIV_DENOMINATOR_INTEGER_BITS, &bits_over_unit);
    headroom = edgeq_count_leading_sign_bits(a);
    quotient = edgeq_srdhm((int32_t)((uint32_t)a << headroom), reciprocal);
    /* never negative: the lowering checks the output scale (div_shift_range) */
    right_shift = bits_over_unit + headroom - shift;
    return edgeq_rounding_divide_by_pot_wide(edgeq_srdhm(quotient, multiplier), right_shift);
}

void edgeq_div_s8(const edgeq_div_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t a = (int32_t)input1[walk.offset1 + i * walk.stride1] + p->input1_offset;
            const int32_t b = (int32_t)input2[walk.offset2 + i * walk.stride2] + p->input2_offset;
            int32_t v;
            if (b == 0) {
                output[i] = (int8_t)p->output_offset;    /* x / 0 is taken as 0 */
                continue;
            }
            v = edgeq_divide(a, b, p->multiplier, p->shift) + p->output_offset;
            v = v < EDGEQ_INT8_MIN ? EDGEQ_INT8_MIN : v;
            v = v > EDGEQ_INT8_MAX ? EDGEQ_INT8_MAX : v;
            output[i] = (int8_t)v;
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
