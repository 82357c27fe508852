/* edgeq kernel: int8 bilinear resize, NHWC (TFLite RESIZE_BILINEAR integer arithmetic: source
 * positions in 1/1024 pixel, the four raw neighbours weighted, weights summing to 2^20). */
#include "edgeq_resize.h"

void edgeq_resize_bilinear_s8(const edgeq_resize_bilinear_params *p, const int8_t *input,
                              int8_t *EDGEQ_RESTRICT output)
{
    const int32_t ch = p->channels;
    const int32_t row_size = p->input_width * ch;
    int32_t oy, ox, c;

    for (oy = 0; oy < p->output_height; ++oy) {
        const int8_t *row0 = input + p->row_lower[oy] * row_size;
        const int8_t *row1 = input + p->row_upper[oy] * row_size;
        const int32_t fy = p->row_fraction[oy];
        for (ox = 0; ox < p->output_width; ++ox) {
            const int32_t x0 = p->col_lower[ox] * ch;
            const int32_t x1 = p->col_upper[ox] * ch;
            const int32_t fx = p->col_fraction[ox];
            /* |weight| <= 1536 * 1536 and |value| <= 128: the sum fits in int32 */
            const int32_t w00 = (1024 - fy) * (1024 - fx);
            const int32_t w10 = fy * (1024 - fx);
            const int32_t w01 = (1024 - fy) * fx;
            const int32_t w11 = fy * fx;
            for (c = 0; c < ch; ++c) {
                int32_t acc = row0[x0 + c] * w00 + row1[x0 + c] * w10 + row0[x1 + c] * w01
                              + row1[x1 + c] * w11;
                /* divide by 2^20, rounding half away from zero */
                acc += acc > 0 ? (1 << 19) : -(1 << 19);
                output[c] = (int8_t)(acc < 0 ? -((-acc) >> 20) : acc >> 20);
            }
            output += ch;
        }
    }
}
