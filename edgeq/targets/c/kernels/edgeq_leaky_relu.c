/* edgeq kernel: int8 leaky ReLU (TFLite LEAKY_RELU: two requantization branches).  Safe in
 * place. */
#include "edgeq_leaky_relu.h"
#include "edgeq_support.h"

void edgeq_leaky_relu_s8(const edgeq_leaky_relu_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] + p->input_offset;
        if (x >= 0) {
            output[i] = edgeq_requantize(x, p->identity_multiplier, p->identity_shift,
                                         p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
        } else {
            output[i] = edgeq_requantize(x, p->alpha_multiplier, p->alpha_shift,
                                         p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
        }
    }
}
