/* edgeq kernel: int8 absolute value (TFLite ABS: |x - zero point|, requantized when the input
 * and output scales differ). */
#include "edgeq_arithmetic.h"
#include "edgeq_support.h"

void edgeq_abs_s8(const edgeq_abs_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] + p->input_offset;
        int32_t v = x < 0 ? -x : x;
        if (p->rescale) {
            v = edgeq_multiply_by_quantized_multiplier(v, p->multiplier, p->shift);
        }
        /* v >= 0 and at most 255 before the rescale: v + offset cannot overflow */
        v += p->output_offset;
        v = v < EDGEQ_INT8_MIN ? EDGEQ_INT8_MIN : v;
        v = v > EDGEQ_INT8_MAX ? EDGEQ_INT8_MAX : v;
        output[i] = (int8_t)v;
    }
}
