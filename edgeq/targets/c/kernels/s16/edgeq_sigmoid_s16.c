/* edgeq kernel: int16 sigmoid (TFLite's int16 LOGISTIC: output 2^-15, zero point 0). */
#include "edgeq_sigmoid_support.h"

/* interpolation steps of 1/512 of a table entry */
#define EDGEQ_SIGMOID_STEP 9
#define EDGEQ_SIGMOID_ONE (1 << 25)          /* 1.0 in 0.16 << 9 */
#define EDGEQ_SIGMOID_SATURATED (0x7FFF << 10)

void edgeq_sigmoid_s16(const edgeq_sigmoid_params *p, const int16_t *input, int16_t *output)
{
    const int32_t half = 1 << EDGEQ_SIGMOID_STEP;     /* rounding of the final >> 10 */
    int32_t i;

    for (i = 0; i < p->size; ++i) {
        const int32_t v = edgeq_sigmoid_table_input(p, input[i]);
        int32_t result = edgeq_sigmoid_interpolate(p->table, v < 0 ? -v : v, EDGEQ_SIGMOID_STEP,
                                                   EDGEQ_SIGMOID_SATURATED);
        /* sigmoid(-x) = 1 - sigmoid(x) */
        result = v >= 0 ? result + half : EDGEQ_SIGMOID_ONE - result + half - 1;
        output[i] = (int16_t)(result >> (EDGEQ_SIGMOID_STEP + 1));
    }
}
