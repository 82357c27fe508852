/* edgeq kernel: int8 elementwise subtract with numpy broadcasting (TFLite ADD arithmetic with
 * the second operand negated before it is rescaled). */
#include "edgeq_add.h"
#include "edgeq_support.h"

void edgeq_sub_s8(const edgeq_add_broadcast_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    const edgeq_add_params *a = &p->add;
    const edgeq_broadcast_shape *b = &p->shape;
    const int32_t inner = b->output_shape[b->dims - 1];
    const int32_t stride1 = b->input1_strides[b->dims - 1];
    const int32_t stride2 = b->input2_strides[b->dims - 1];
    const int32_t rows = edgeq_broadcast_rows(b);
    const int32_t lo = a->act_min - a->output_offset;
    const int32_t hi = a->act_max - a->output_offset;
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t offset1 = 0;
    int32_t offset2 = 0;
    int32_t r, i;

    for (r = 0; r < rows; ++r) {
        const int8_t *in1 = input1 + offset1;
        const int8_t *in2 = input2 + offset2;
        for (i = 0; i < inner; ++i) {
            const int32_t x1 = ((int32_t)in1[i * stride1] + a->input1_offset) * (1 << a->left_shift);
            const int32_t x2 = -((int32_t)in2[i * stride2] + a->input2_offset) * (1 << a->left_shift);
            const int32_t s1 = edgeq_multiply_by_quantized_multiplier(x1, a->input1_multiplier,
                                                                      a->input1_shift);
            const int32_t s2 = edgeq_multiply_by_quantized_multiplier(x2, a->input2_multiplier,
                                                                      a->input2_shift);
            int32_t out = edgeq_multiply_by_quantized_multiplier(s1 + s2, a->output_multiplier,
                                                                 a->output_shift);
            out = out < lo ? lo : out;
            out = out > hi ? hi : out;
            output[i] = (int8_t)(out + a->output_offset);
        }
        output += inner;
        edgeq_broadcast_next_row(b, index, &offset1, &offset2);
    }
}
