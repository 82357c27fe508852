/* edgeq kernel: 16x8 fully connected layer, int16 input and output, int8 weights [out][in],
 * int64 biases and accumulators. */
#include "edgeq_fully_connected.h"
#include "edgeq_support_s16.h"

void edgeq_fully_connected_s16(const edgeq_fully_connected_s16_params *p, const int16_t *input,
                               int16_t *output)
{
    const edgeq_channel_requant *requant = &p->requant;
    const edgeq_fc_shape *shape = &p->shape;
    const int32_t n = shape->input_features;
    const int32_t out_n = shape->output_features;
    int32_t r, o, k;

    for (r = 0; r < shape->rows; ++r) {
        const int16_t *x = input + r * n;
        for (o = 0; o + 4 <= out_n; o += 4) {
            int64_t acc[4];
            acc[0] = p->bias[o];
            acc[1] = p->bias[o + 1];
            acc[2] = p->bias[o + 2];
            acc[3] = p->bias[o + 3];
            edgeq_dot4_s16(x, p->weights + o * n, n, n, acc);
            for (k = 0; k < 4; ++k) {
                output[o + k] = edgeq_requantize_s16(acc[k], requant->multiplier[o + k],
                                                     requant->shift[o + k], requant->act_min,
                                                     requant->act_max);
            }
        }
        for (; o < out_n; ++o) {
            output[o] = edgeq_requantize_s16(p->bias[o] + edgeq_dot_s16(x, p->weights + o * n, n),
                                             requant->multiplier[o], requant->shift[o],
                                             requant->act_min, requant->act_max);
        }
        output += out_n;
    }
}
