/* edgeq kernel: int8 elementwise multiply with numpy broadcasting (TFLite MUL arithmetic). */
#include "edgeq_mul.h"
#include "edgeq_support.h"

void edgeq_mul_s8(const edgeq_mul_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t x1 = (int32_t)input1[walk.offset1 + i * walk.stride1] + p->input1_offset;
            const int32_t x2 = (int32_t)input2[walk.offset2 + i * walk.stride2] + p->input2_offset;
            output[i] = edgeq_requantize(x1 * x2, p->multiplier, p->shift, p->output_offset,
                                         p->act_min, p->act_max);
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
