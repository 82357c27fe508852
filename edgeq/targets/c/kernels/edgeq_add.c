/* edgeq kernel: int8 elementwise add of two same-shape tensors (TFLite ADD arithmetic). */
#include "edgeq_add_support.h"

/* Input value x (its zero point removed) rescaled, as edgeq_add_rescaled() does it, on the fast
 * path: `half` (a constant where inlined) when the input's (multiplier, shift) is (2^30, 0),
 * the input with the larger scale: then the doubling high multiply of x << left_shift by
 * 2^30 halves an even number, x << (left_shift - 1) exactly; else edgeq_requantize_fast(). */
static EDGEQ_ALWAYS_INLINE int32_t fast_scaled(int32_t x, int32_t ls, int32_t half, int32_t m, int32_t e,
                                               int32_t r)
{
    if (half) {
        return (int32_t)((uint32_t)x << (ls - 1));
    }
    return edgeq_requantize_fast((int32_t)((uint32_t)x << ls), m, e, r);
}

/* The three rescalings of the fast path (p->fast: edgeq's generator checked the
 * preconditions of edgeq_requantize_fast() for every input value: |x << left_shift| < 2^30,
 * |s1 + s2| < 2^30, right shifts in [1, 21] or an input's (2^30, 0)), the output zero point
 * in the last one's rounding term. */
static EDGEQ_ALWAYS_INLINE void add_fast(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2,
                                         int8_t *output, int32_t half1, int32_t half2)
{
    const int32_t ls = p->left_shift, n = p->size;
    const int32_t off1 = p->input1_offset, m1 = p->input1_multiplier, e1 = -p->input1_shift;
    const int32_t off2 = p->input2_offset, m2 = p->input2_multiplier, e2 = -p->input2_shift;
    const int32_t mo = p->output_multiplier, eo = -p->output_shift;
    const int32_t r1 = half1 ? 0 : (int32_t)(1u << (e1 - 1)), r2 = half2 ? 0 : (int32_t)(1u << (e2 - 1));
    const int32_t ro = (int32_t)((uint32_t)(2 * p->output_offset + 1) << (eo - 1));
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t clamped = lo > EDGEQ_INT8_MIN || hi < EDGEQ_INT8_MAX;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t s1 = fast_scaled(input1[i] + off1, ls, half1, m1, e1, r1);
        const int32_t s2 = fast_scaled(input2[i] + off2, ls, half2, m2, e2, r2);
        int32_t y = edgeq_ssat8(edgeq_requantize_fast(s1 + s2, mo, eo, ro));
        if (clamped) {
            y = y < lo ? lo : (y > hi ? hi : y);
        }
        output[i] = (int8_t)y;
    }
}

void edgeq_add_s8(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    const int32_t lo = p->act_min - p->output_offset;
    const int32_t hi = p->act_max - p->output_offset;
    int32_t i;

    if (p->fast) {
        if (p->input1_shift == 0 && p->input2_shift == 0) {
            add_fast(p, input1, input2, output, 1, 1);
        } else if (p->input1_shift == 0) {
            add_fast(p, input1, input2, output, 1, 0);
        } else if (p->input2_shift == 0) {
            add_fast(p, input1, input2, output, 0, 1);
        } else {
            add_fast(p, input1, input2, output, 0, 0);
        }
        return;
    }
    for (i = 0; i < p->size; ++i) {
        const int32_t out = edgeq_add_rescaled(p, (int32_t)input1[i] + p->input1_offset,
                                               (int32_t)input2[i] + p->input2_offset, lo, hi);
        output[i] = (int8_t)(out + p->output_offset);
    }
}
