/* edgeq kernel: int16 tanh (TFLite's int16 TANH, 2 sigmoid(2x) - 1 on the sigmoid table:
 * output 2^-15, zero point 0). */
#include "edgeq_sigmoid_support.h"

/* interpolation steps of 1/256 of a table entry (the doubled argument) */
#define EDGEQ_TANH_STEP 8
#define EDGEQ_TANH_HALF (1 << 23)            /* 0.5 in 0.16 << 8 */
#define EDGEQ_TANH_SATURATED (0xFFFF << 8)

void edgeq_tanh_s16(const edgeq_sigmoid_params *p, const int16_t *input, int16_t *output)
{
    const int32_t half = 1 << (EDGEQ_TANH_STEP - 1);  /* rounding of the final >> 8 */
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t v = edgeq_sigmoid_table_input(p, input[i]);
        int32_t result = edgeq_sigmoid_interpolate(p->table, v < 0 ? -v : v, EDGEQ_TANH_STEP,
                                                   EDGEQ_TANH_SATURATED);
        /* tanh(-x) = -tanh(x) */
        result = v >= 0 ? result - EDGEQ_TANH_HALF + half : -result + EDGEQ_TANH_HALF + half - 1;
        output[i] = (int16_t)(result >> EDGEQ_TANH_STEP);
    }
}
