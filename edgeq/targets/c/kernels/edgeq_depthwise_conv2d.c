/* edgeq kernel: int8 depthwise 2-D convolution, NHWC input, 1HWO weights. */
#include "edgeq_kernels.h"

void edgeq_depthwise_conv2d_s8(const edgeq_depthwise_conv2d_params *p, const int8_t *input,
                               int8_t *output)
{
    const int32_t in_h = p->input_height;
    const int32_t in_w = p->input_width;
    const int32_t in_c = p->input_channels;
    const int32_t mult = p->depth_multiplier;
    const int32_t out_c = in_c * mult;
    int32_t oy, ox, ic, m, ky, kx;

    for (oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_top;
        for (ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_left;
            for (ic = 0; ic < in_c; ++ic) {
                for (m = 0; m < mult; ++m) {
                    const int32_t oc = ic * mult + m;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->kernel_height; ++ky) {
                        const int32_t in_y = in_y0 + ky * p->dilation_height;
                        if (in_y < 0 || in_y >= in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->kernel_width; ++kx) {
                            const int32_t in_x = in_x0 + kx * p->dilation_width;
                            int32_t x;
                            int32_t w;
                            if (in_x < 0 || in_x >= in_w) {
                                continue;
                            }
                            x = input[(in_y * in_w + in_x) * in_c + ic];
                            w = p->weights[(ky * p->kernel_width + kx) * out_c + oc];
                            acc += w * (x + p->input_offset);
                        }
                    }
                    acc += p->bias[oc];
                    *output++ = edgeq_requantize(acc, p->multiplier[oc], p->shift[oc],
                                                 p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}
