/* edgeq kernel: int8 elementwise add of two same-shape tensors (TFLite ADD arithmetic). */
#include "edgeq_add_support.h"

void edgeq_add_s8(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    const int32_t lo = p->act_min - p->output_offset;
    const int32_t hi = p->act_max - p->output_offset;
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t out = edgeq_add_rescaled(p, (int32_t)input1[i] + p->input1_offset,
                                               (int32_t)input2[i] + p->input2_offset, lo, hi);
        output[i] = (int8_t)(out + p->output_offset);
    }
}
