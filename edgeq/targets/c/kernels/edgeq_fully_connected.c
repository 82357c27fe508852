/* edgeq kernel: int8 fully connected layer, weights [out][in]. */
#include "edgeq_kernels.h"

void edgeq_fully_connected_s8(const edgeq_fully_connected_params *p, const int8_t *input,
                              int8_t *output)
{
    const int32_t in_f = p->input_features;
    int32_t r, o, i;

    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = input + r * in_f;
        for (o = 0; o < p->output_features; ++o) {
            const int8_t *w = p->weights + o * in_f;
            int32_t acc = 0;
            for (i = 0; i < in_f; ++i) {
                acc += (int32_t)w[i] * ((int32_t)x[i] + p->input_offset);
            }
            acc += p->bias[o];
            *output++ = edgeq_requantize(acc, p->multiplier[o], p->shift[o], p->output_offset,
                                         p->act_min, p->act_max);
        }
    }
}
