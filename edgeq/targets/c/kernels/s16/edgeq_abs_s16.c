/* edgeq kernel: int16 absolute value (TFLite's int16 ABS, zero points 0: |x|, requantized when
 * the input and output scales differ, saturated to int16: |-32768| is 32767). */
#include "edgeq_arithmetic.h"
#include "edgeq_support.h"

void edgeq_abs_s16(const edgeq_abs_params *p, const int16_t *input, int16_t *output)
{
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t x = (int32_t)input[i] + p->input_offset;
        int32_t v = x < 0 ? -x : x;
        if (p->rescale) {
            v = edgeq_multiply_by_quantized_multiplier(v, p->multiplier, p->shift);
        }
        v += p->output_offset;
        v = v < EDGEQ_INT16_MIN ? EDGEQ_INT16_MIN : v;
        v = v > EDGEQ_INT16_MAX ? EDGEQ_INT16_MAX : v;
        output[i] = (int16_t)v;
    }
}
