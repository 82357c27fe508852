/* edgeq kernel: int8 average pooling over the valid part of each window, NHWC. */
#include "edgeq_pool2d.h"

void edgeq_avg_pool2d_s8(const edgeq_pool2d_params *params, const int8_t *input, int8_t *output)
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
            const int32_t count = (y_end > y_start && x_end > x_start)
                                  ? (y_end - y_start) * (x_end - x_start) : 0;
            for (c = 0; c < ch; ++c) {
                int32_t sum = 0;
                int32_t avg = 0;
                for (y = y_start; y < y_end; ++y) {
                    for (x = x_start; x < x_end; ++x) {
                        sum += input[(y * in_w + x) * ch + c];
                    }
                }
                if (count > 0) {
                    /* round half away from zero */
                    avg = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                }
                avg = avg < p->act_min ? p->act_min : avg;
                avg = avg > p->act_max ? p->act_max : avg;
                *output++ = (int8_t)avg;
            }
        }
    }
}
