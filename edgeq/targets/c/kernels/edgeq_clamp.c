/* edgeq kernel: int8 clamp (ReLU, ReLU6, hardtanh) with requantization. */
#include "edgeq_clamp.h"
#include "edgeq_support.h"

void edgeq_clamp_s8(const edgeq_clamp_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        output[i] = edgeq_requantize((int32_t)input[i] + p->input_offset, p->multiplier,
                                     p->shift, p->output_offset, p->act_min, p->act_max);
    }
}
