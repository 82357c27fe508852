/* edgeq kernel: int8 squared difference with numpy broadcasting (TFLite SQUARED_DIFFERENCE:
 * ADD's input rescaling, the difference squared in int32, one requantization). */
#include "edgeq_arithmetic.h"
#include "edgeq_support.h"

/* (x + offset) << left_shift, rescaled to the common scale; the multipliers are below 1/2
 * (shift <= 0), so this is ADD's rescaling of one input. */
static inline int32_t edgeq_scaled_input(int32_t x, int32_t left_shift, int32_t multiplier,
                                         int32_t shift)
{
    return edgeq_multiply_by_quantized_multiplier(x * (1 << left_shift), multiplier, shift);
}

void edgeq_squared_difference_s8(const edgeq_squared_difference_params *p, const int8_t *input1,
                                 const int8_t *input2, int8_t *output)
{
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t x1 = (int32_t)input1[walk.offset1 + i * walk.stride1] + p->input1_offset;
            const int32_t x2 = (int32_t)input2[walk.offset2 + i * walk.stride2] + p->input2_offset;
            /* each rescaled input is at most 255 * 2^left_shift / 2 in magnitude: the square
             * of their difference fits in int32 */
            const int32_t s1 = edgeq_scaled_input(x1, p->left_shift, p->input1_multiplier,
                                                  p->input1_shift);
            const int32_t s2 = edgeq_scaled_input(x2, p->left_shift, p->input2_multiplier,
                                                  p->input2_shift);
            const int32_t diff = s1 - s2;
            output[i] = edgeq_requantize(diff * diff, p->output_multiplier, p->output_shift,
                                         p->output_offset, EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
