/* edgeq kernel: int8 elementwise add of two same-shape tensors (TFLite ADD arithmetic). */
#include "edgeq_add_support.h"

/* The fast path (p->fast: edgeq's generator checked, for every input value, the
 * preconditions of edgeq_requantize_fast() for the three rescalings): each input value x,
 * its zero point removed, is rescaled as edgeq_requantize_fast(x << k, m, e, r), the output
 * zero point in the last rescaling's rounding term.  An input rescaled by (2^30, 0), the one
 * with the larger scale, has no right shift: it takes k = left_shift + 1, e = 1, r = 1, which
 * gives x << (left_shift - 1), as the doubling high multiply by 2^30 of x << left_shift does
 * (both halve an even number). */
static void add_fast(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    const int32_t ls = p->left_shift, n = p->size;
    const int32_t off1 = p->input1_offset, m1 = p->input1_multiplier;
    const int32_t off2 = p->input2_offset, m2 = p->input2_multiplier;
    const int32_t k1 = p->input1_shift == 0 ? ls + 1 : ls, k2 = p->input2_shift == 0 ? ls + 1 : ls;
    const int32_t e1 = p->input1_shift == 0 ? 1 : -p->input1_shift;
    const int32_t e2 = p->input2_shift == 0 ? 1 : -p->input2_shift;
    const int32_t r1 = (int32_t)(1u << (e1 - 1)), r2 = (int32_t)(1u << (e2 - 1));
    const int32_t mo = p->output_multiplier, eo = -p->output_shift;
    const int32_t ro = (int32_t)((uint32_t)(2 * p->output_offset + 1) << (eo - 1));
    const int32_t lo = p->act_min, hi = p->act_max;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t s1 = edgeq_requantize_fast((int32_t)((uint32_t)(input1[i] + off1) << k1), m1, e1, r1);
        const int32_t s2 = edgeq_requantize_fast((int32_t)((uint32_t)(input2[i] + off2) << k2), m2, e2, r2);
        const int32_t y = edgeq_requantize_fast(s1 + s2, mo, eo, ro);
        output[i] = (int8_t)(y < lo ? lo : (y > hi ? hi : y));
    }
}

void edgeq_add_s8(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    const int32_t lo = p->act_min - p->output_offset;
    const int32_t hi = p->act_max - p->output_offset;
    int32_t i;

    if (p->fast) {
        add_fast(p, input1, input2, output);
        return;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t out = edgeq_add_rescaled(p, (int32_t)input1[i] + p->input1_offset,
                                               (int32_t)input2[i] + p->input2_offset, lo, hi);
        output[i] = (int8_t)(out + p->output_offset);
    }
}
