/* edgeq kernel: int8 max pooling, NHWC. */
#include "edgeq_pool2d.h"

void edgeq_max_pool2d_s8(const edgeq_pool2d_params *params, const int8_t *input, int8_t *output)
{
    /* a local copy: the output may overlap the input (no restrict), so stores through it
     * could otherwise change the parameters as far as the compiler knows */
    const edgeq_pool2d_params local = *params;
    const edgeq_pool2d_params *const p = &local;
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
                int32_t max = EDGEQ_INT8_MIN;
                for (y = y_start; y < y_end; ++y) {
                    for (x = x_start; x < x_end; ++x) {
                        const int32_t v = input[(y * in_w + x) * ch + c];
                        max = v > max ? v : max;
                    }
                }
                max = max < p->act_min ? p->act_min : max;
                max = max > p->act_max ? p->act_max : max;
                *output++ = (int8_t)max;
            }
        }
    }
}
