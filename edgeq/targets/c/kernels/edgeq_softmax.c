/*
 * edgeq kernel: TFLite's reference int8 softmax (int8 in, int8 out with scale 1/256 and zero
 * point -128), built on gemmlowp's fixed-point exp and Newton-Raphson reciprocal.  Mirrors
 * edgeq/intmath_softmax.py: Q5.26 scaled differences, Q0.31 exps, a Q12.19 sum with
 * wrapping int32 adds.
 */
#include "edgeq_softmax.h"
#include "edgeq_softmax_support.h"

/* exp(x - max) in Q0.31 for a valid difference (diff >= diff_min).  Out of line: inlined in
 * both of its loops it doubled the fixed-point exp's code (300 bytes of flash), for a call per
 * element. */
static EDGEQ_NOINLINE int32_t softmax_exp(const edgeq_softmax_params *p, int32_t diff)
{
    const int32_t shifted = (int32_t)((uint32_t)diff << p->input_left_shift);
    return edgeq_exp_on_negative_values_q5(edgeq_srdhm(shifted, p->input_multiplier));
}

int edgeq_softmax_s8(const edgeq_softmax_params *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->depth;
    const int32_t inner = p->inner;
    int32_t o, i, d;

    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int8_t *x = input + o * depth * inner + i;
            int8_t *y = output + o * depth * inner + i;
            int32_t max = EDGEQ_INT8_MIN;
            int32_t sum = 0;
            int32_t num_bits_over_unit;
            int32_t reciprocal;
            int32_t exponent;

            for (d = 0; d < depth; ++d) {
                max = x[d * inner] > max ? x[d * inner] : max;
            }
            for (d = 0; d < depth; ++d) {
                const int32_t diff = (int32_t)x[d * inner] - max;
                if (diff >= p->diff_min) {
                    /* Q0.31 -> Q12.19, wrapping int32 sum */
                    sum = edgeq_wrap_add(sum, edgeq_rounding_divide_by_pot(
                        softmax_exp(p, diff), EDGEQ_SOFTMAX_ACCUM_INTEGER_BITS));
                }
            }
            reciprocal = edgeq_get_reciprocal(sum, &num_bits_over_unit);
            exponent = num_bits_over_unit + 31 - 8;
            if (exponent < 0 || exponent > 31) {
                return 1;   /* TFLite: TFLITE_CHECK(0 <= exponent && exponent <= 31) */
            }
            for (d = 0; d < depth; ++d) {
                const int32_t diff = (int32_t)x[d * inner] - max;
                int32_t out = EDGEQ_INT8_MIN;
                if (diff >= p->diff_min) {
                    out = edgeq_rounding_divide_by_pot(
                              edgeq_srdhm(reciprocal, softmax_exp(p, diff)), exponent) - 128;
                    out = out < EDGEQ_INT8_MIN ? EDGEQ_INT8_MIN : out;
                    out = out > EDGEQ_INT8_MAX ? EDGEQ_INT8_MAX : out;
                }
                y[d * inner] = (int8_t)out;
            }
        }
    }
    return 0;
}
