/* edgeq kernel: int16 elementwise multiply with numpy broadcasting (TFLite's int16 MUL: zero
 * points 0, the int32 product requantized, clamped in int16). */
#include "edgeq_mul.h"
#include "edgeq_support.h"

void edgeq_mul_s16(const edgeq_mul_params *p, const int16_t *input1, const int16_t *input2,
                   int16_t *output)
{
    /* clamp(r + offset, lo, hi) == clamp(r, lo - offset, hi - offset) + offset */
    const int32_t lo = p->act_min - p->output_offset;
    const int32_t hi = p->act_max - p->output_offset;
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t x1 = (int32_t)input1[walk.offset1 + i * walk.stride1] + p->input1_offset;
            const int32_t x2 = (int32_t)input2[walk.offset2 + i * walk.stride2] + p->input2_offset;
            /* |x1 * x2| <= 2^30: the product fits in int32 */
            int32_t out = edgeq_multiply_by_quantized_multiplier(x1 * x2, p->multiplier, p->shift);
            out = out < lo ? lo : out;
            out = out > hi ? hi : out;
            output[i] = (int16_t)(out + p->output_offset);
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}
