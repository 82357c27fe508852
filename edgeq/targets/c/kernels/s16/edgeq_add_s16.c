/* edgeq kernel: int16 elementwise add of two same-shape tensors (TFLite int16 ADD arithmetic,
 * left shift 15, zero points 0). */
#include "edgeq_add_support.h"

void edgeq_add_s16(const edgeq_add_params *p, const int16_t *input1, const int16_t *input2,
                   int16_t *output)
{
    const int32_t lo = p->act_min - p->output_offset;
    const int32_t hi = p->act_max - p->output_offset;
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        /* |x + offset| <= 2^15 (zero points are 0), so the shifted value fits in int32 */
        const int32_t out = edgeq_add_rescaled(p, (int32_t)input1[i] + p->input1_offset,
                                               (int32_t)input2[i] + p->input2_offset, lo, hi);
        output[i] = (int16_t)(out + p->output_offset);
    }
}
