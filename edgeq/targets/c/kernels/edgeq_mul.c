/* edgeq kernel: int8 elementwise multiply with numpy broadcasting (TFLite MUL arithmetic). */
#include "edgeq_mul.h"
#include "edgeq_support.h"

void edgeq_mul_s8(const edgeq_mul_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    const edgeq_broadcast_shape *b = &p->shape;
    const int32_t inner = b->output_shape[b->dims - 1];
    const int32_t stride1 = b->input1_strides[b->dims - 1];
    const int32_t stride2 = b->input2_strides[b->dims - 1];
    const int32_t rows = edgeq_broadcast_rows(b);
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t offset1 = 0;
    int32_t offset2 = 0;
    int32_t r, i;

    for (r = 0; r < rows; ++r) {
        const int8_t *x1 = input1 + offset1;
        const int8_t *x2 = input2 + offset2;
        for (i = 0; i < inner; ++i) {
            const int32_t product = ((int32_t)x1[i * stride1] + p->input1_offset)
                                    * ((int32_t)x2[i * stride2] + p->input2_offset);
            output[i] = edgeq_requantize(product, p->multiplier, p->shift, p->output_offset,
                                         p->act_min, p->act_max);
        }
        output += inner;
        edgeq_broadcast_next_row(b, index, &offset1, &offset2);
    }
}
