/* edgeq kernel: int8 add with numpy broadcasting (TFLite ADD arithmetic). */
#include "edgeq_add.h"
#include "edgeq_support.h"

void edgeq_add_broadcast_s8(const edgeq_add_broadcast_params *p, const int8_t *input1,
                            const int8_t *input2, int8_t *output)
{
    const edgeq_broadcast_shape *shape = &p->shape;
    const edgeq_add_params *a = &p->add;
    const int32_t lo = a->act_min - a->output_offset;
    const int32_t hi = a->act_max - a->output_offset;
    int32_t index[EDGEQ_MAX_DIMS];
    int32_t total = 1;
    int32_t off1 = 0;
    int32_t off2 = 0;
    int32_t d, i;

    for (d = 0; d < shape->dims; ++d) {
        index[d] = 0;
        total *= shape->output_shape[d];
    }
    for (i = 0; i < total; ++i) {
        const int32_t x1 = ((int32_t)input1[off1] + a->input1_offset) * (1 << a->left_shift);
        const int32_t x2 = ((int32_t)input2[off2] + a->input2_offset) * (1 << a->left_shift);
        const int32_t s1 = edgeq_multiply_by_quantized_multiplier(x1, a->input1_multiplier,
                                                                  a->input1_shift);
        const int32_t s2 = edgeq_multiply_by_quantized_multiplier(x2, a->input2_multiplier,
                                                                  a->input2_shift);
        int32_t out = edgeq_multiply_by_quantized_multiplier(s1 + s2, a->output_multiplier,
                                                             a->output_shift);
        out = out < lo ? lo : out;
        out = out > hi ? hi : out;
        output[i] = (int8_t)(out + a->output_offset);
        /* advance the multi-index (last dimension fastest) */
        for (d = shape->dims - 1; d >= 0; --d) {
            off1 += shape->input1_strides[d];
            off2 += shape->input2_strides[d];
            if (++index[d] < shape->output_shape[d]) {
                break;
            }
            off1 -= shape->input1_strides[d] * shape->output_shape[d];
            off2 -= shape->input2_strides[d] * shape->output_shape[d];
            index[d] = 0;
        }
    }
}
