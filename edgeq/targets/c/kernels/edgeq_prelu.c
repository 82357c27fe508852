/* edgeq kernel: int8 PReLU with a broadcast slope tensor (TFLite PRELU arithmetic).  Safe in
 * place. */
#include "edgeq_prelu.h"
#include "edgeq_support.h"

void edgeq_prelu_s8(const edgeq_prelu_params *p, const int8_t *input, const int8_t *alpha,
                    int8_t *output)
{
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t x = (int32_t)input[walk.offset1 + i * walk.stride1] + p->input_offset;
            if (x >= 0) {
                output[i] = edgeq_requantize(x, p->identity_multiplier, p->identity_shift,
                                             p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
            } else {
                const int32_t slope = (int32_t)alpha[walk.offset2 + i * walk.stride2]
                                      + p->alpha_offset;
                output[i] = edgeq_requantize(x * slope, p->alpha_multiplier, p->alpha_shift,
                                             p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
            }
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
