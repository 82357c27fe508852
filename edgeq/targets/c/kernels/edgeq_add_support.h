/*
 * edgeq integer kernels: TFLite ADD's arithmetic, shared by the add and subtract kernels (int8
 * and int16).
 */
#ifndef EDGEQ_ADD_SUPPORT_H
#define EDGEQ_ADD_SUPPORT_H

#include "edgeq_add.h"
#include "edgeq_support.h"

/* x1 + x2 for inputs already offset by their zero points (x2 negated for SUB): both shifted
 * left by left_shift, rescaled to a common scale, summed, requantized to the output scale and
 * clamped to [lo, hi], the activation range minus the output offset (which the caller adds
 * after the clamp, so that no int32 sum overflows). */
static inline int32_t edgeq_add_rescaled(const edgeq_add_params *p, int32_t x1, int32_t x2,
                                         int32_t lo, int32_t hi)
{
    const int32_t shifted1 = x1 * (1 << p->left_shift);
    const int32_t shifted2 = x2 * (1 << p->left_shift);
    const int32_t s1 = edgeq_multiply_by_quantized_multiplier(shifted1, p->input1_multiplier,
                                                              p->input1_shift);
    const int32_t s2 = edgeq_multiply_by_quantized_multiplier(shifted2, p->input2_multiplier,
                                                              p->input2_shift);
    const int32_t out = edgeq_multiply_by_quantized_multiplier(s1 + s2, p->output_multiplier,
                                                               p->output_shift);
    return out < lo ? lo : (out > hi ? hi : out);
}

/* ADD with numpy broadcasting, row by row; SUB when sign2 is -1 (the second operand, offset
 * by its zero point, is negated before it is shifted and rescaled). */
static inline void edgeq_add_broadcast_rows(const edgeq_add_broadcast_params *p,
                                            const int8_t *input1, const int8_t *input2,
                                            int32_t sign2, int8_t *output)
{
    const edgeq_add_params *a = &p->add;
    const int32_t lo = a->act_min - a->output_offset;
    const int32_t hi = a->act_max - a->output_offset;
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t x1 = (int32_t)input1[walk.offset1 + i * walk.stride1] + a->input1_offset;
            const int32_t x2 = sign2 * ((int32_t)input2[walk.offset2 + i * walk.stride2]
                                        + a->input2_offset);
            output[i] = (int8_t)(edgeq_add_rescaled(a, x1, x2, lo, hi) + a->output_offset);
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}

#endif /* EDGEQ_ADD_SUPPORT_H */
