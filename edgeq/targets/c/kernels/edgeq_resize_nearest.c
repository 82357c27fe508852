/* edgeq kernel: int8 nearest-neighbour resize, NHWC, with precomputed source rows and columns. */
#include "edgeq_resize.h"

void edgeq_resize_nearest_s8(const edgeq_resize_nearest_params *p, const int8_t *input,
                             int8_t *EDGEQ_RESTRICT output)
{
    const int32_t ch = p->channels;
    int32_t oy, ox, c;

    for (oy = 0; oy < p->output_height; ++oy) {
        const int8_t *row = input + p->rows[oy] * p->input_width * ch;
        for (ox = 0; ox < p->output_width; ++ox) {
            const int8_t *x = row + p->cols[ox] * ch;
            for (c = 0; c < ch; ++c) {
                output[c] = x[c];
            }
            output += ch;
        }
    }
}
