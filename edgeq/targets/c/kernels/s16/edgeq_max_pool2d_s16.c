/* edgeq kernel: int16 max pooling (16x8 mode), NHWC. */
#include "edgeq_pool2d.h"

void edgeq_max_pool2d_s16(const edgeq_pool2d_params *p, const int16_t *input,
                          int16_t *output)
{
    const edgeq_pool_window *window = &p->window;
    const int32_t in_h = window->input_height;
    const int32_t in_w = window->input_width;
    const int32_t ch = window->channels;
    int32_t oy, ox, c, y, x;

    for (oy = 0; oy < window->output_height; ++oy) {
        const int32_t y0 = oy * window->stride_height - window->pad_top;
        const int32_t y_start = y0 > 0 ? y0 : 0;
        const int32_t y_end = y0 + window->kernel_height < in_h ? y0 + window->kernel_height : in_h;
        for (ox = 0; ox < window->output_width; ++ox) {
            const int32_t x0 = ox * window->stride_width - window->pad_left;
            const int32_t x_start = x0 > 0 ? x0 : 0;
            const int32_t x_end = x0 + window->kernel_width < in_w ? x0 + window->kernel_width
                                                                   : in_w;
            for (c = 0; c < ch; ++c) {
                int32_t max = EDGEQ_INT16_MIN;
                for (y = y_start; y < y_end; ++y) {
                    for (x = x_start; x < x_end; ++x) {
                        const int32_t v = input[(y * in_w + x) * ch + c];
                        max = v > max ? v : max;
                    }
                }
                max = max < p->act_min ? p->act_min : max;
                max = max > p->act_max ? p->act_max : max;
                *output++ = (int16_t)max;
            }
        }
    }
}
