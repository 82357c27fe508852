/* edgeq kernel: int8 2-D convolution (regular or grouped), NHWC input, OHWI weights. */
#include "edgeq_kernels.h"

void edgeq_conv2d_s8(const edgeq_conv2d_params *p, const int8_t *input, int8_t *output)
{
    const int32_t in_h = p->input_height;
    const int32_t in_w = p->input_width;
    const int32_t in_c = p->input_channels;
    const int32_t out_c = p->output_channels;
    const int32_t group_in_c = in_c / p->groups;
    const int32_t group_out_c = out_c / p->groups;
    const int32_t filter_size = p->kernel_height * p->kernel_width * group_in_c;
    int32_t oy, ox, oc, ky, kx, ic;

    for (oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_top;
        for (ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_left;
            for (oc = 0; oc < out_c; ++oc) {
                const int8_t *filter = p->weights + oc * filter_size;
                const int32_t first_in_c = (oc / group_out_c) * group_in_c;
                int32_t acc = 0;
                for (ky = 0; ky < p->kernel_height; ++ky) {
                    const int32_t in_y = in_y0 + ky * p->dilation_height;
                    if (in_y < 0 || in_y >= in_h) {
                        continue;
                    }
                    for (kx = 0; kx < p->kernel_width; ++kx) {
                        const int32_t in_x = in_x0 + kx * p->dilation_width;
                        const int8_t *x;
                        const int8_t *w;
                        if (in_x < 0 || in_x >= in_w) {
                            continue;
                        }
                        x = input + (in_y * in_w + in_x) * in_c + first_in_c;
                        w = filter + (ky * p->kernel_width + kx) * group_in_c;
                        for (ic = 0; ic < group_in_c; ++ic) {
                            acc += (int32_t)w[ic] * ((int32_t)x[ic] + p->input_offset);
                        }
                    }
                }
                acc += p->bias[oc];
                *output++ = edgeq_requantize(acc, p->multiplier[oc], p->shift[oc],
                                             p->output_offset, p->act_min, p->act_max);
            }
        }
    }
}
