/* edgeq kernel: int8 PReLU with a broadcast slope tensor (TFLite PRELU arithmetic).  Safe in
 * place. */
#include "edgeq_prelu.h"
#include "edgeq_support.h"

void edgeq_prelu_s8(const edgeq_prelu_params *p, const int8_t *input, const int8_t *alpha,
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
        const int8_t *x_row = input + offset1;
        const int8_t *a_row = alpha + offset2;
        for (i = 0; i < inner; ++i) {
            const int32_t x = (int32_t)x_row[i * stride1] + p->input_offset;
            if (x >= 0) {
                output[i] = edgeq_requantize(x, p->identity_multiplier, p->identity_shift,
                                             p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
            } else {
                const int32_t slope = (int32_t)a_row[i * stride2] + p->alpha_offset;
                output[i] = edgeq_requantize(x * slope, p->alpha_multiplier, p->alpha_shift,
                                             p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
            }
        }
        output += inner;
        edgeq_broadcast_next_row(b, index, &offset1, &offset2);
    }
}
