/* edgeq kernel: int16 elementwise subtract with numpy broadcasting (the second operand negated
 * with saturation, then TFLite's int16 ADD arithmetic: left shift 15, zero points 0). */
#include "edgeq_add_support.h"

void edgeq_sub_s16(const edgeq_add_broadcast_params *p, const int16_t *input1,
                   const int16_t *input2, int16_t *output)
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
            int32_t x2 = -(int32_t)input2[walk.offset2 + i * walk.stride2];
            x2 = x2 > EDGEQ_INT16_MAX ? EDGEQ_INT16_MAX : x2;      /* -(-32768) saturates */
            output[i] = (int16_t)(edgeq_add_rescaled(a, x1, x2 + a->input2_offset, lo, hi)
                                  + a->output_offset);
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
