/* edgeq kernel: 16x8 depthwise 2-D convolution, int16 NHWC input, int8 1HWO weights, int64
 * biases and accumulators. */
#include "edgeq_depthwise_conv2d.h"
#include "edgeq_support_s16.h"

void edgeq_depthwise_conv2d_s16(const edgeq_depthwise_conv2d_s16_params *p, const int16_t *input,
                                int16_t *output)
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const edgeq_channel_requant *requant = &p->requant;
    const int32_t in_w = geo->input_width;
    const int32_t in_c = geo->input_channels;
    const int32_t mult = p->depth_multiplier;
    const int32_t out_c = in_c * mult;
    const int32_t kw = geo->kernel_width;
    /* pointer steps between taps */
    const int32_t x_step_x = geo->dilation_width * in_c;
    const int32_t x_step_y = geo->dilation_height * in_w * in_c;
    const int32_t w_step_y = kw * out_c;
    int32_t oy, ox, c, m, ky, kx;

    for (oy = 0; oy < geo->output_height; ++oy) {
        int32_t ky0, ky1;
        const int32_t in_y0 = edgeq_window_rows(geo, oy, &ky0, &ky1);
        for (ox = 0; ox < geo->output_width; ++ox) {
            const int32_t in_x0 = ox * geo->stride_width - geo->pad_left;
            /* first valid tap of this output pixel, for channel 0 */
            const int16_t *x_first;
            const int8_t *w_first;
            int32_t kx0, kx1;
            int32_t rows = ky1 - ky0;
            edgeq_valid_taps(in_x0, geo->dilation_width, kw, in_w, &kx0, &kx1);
            if (rows > 0 && kx1 > kx0) {
                x_first = input + ((in_y0 + ky0 * geo->dilation_height) * in_w
                                   + in_x0 + kx0 * geo->dilation_width) * in_c;
                w_first = p->weights + (ky0 * kw + kx0) * out_c;
            } else {
                /* the window lies in the padding: the sums are empty */
                x_first = input;
                w_first = p->weights;
                rows = 0;
            }
            for (c = 0; c < in_c; ++c) {
                for (m = 0; m < mult; ++m) {
                    const int32_t oc = c * mult + m;
                    const int16_t *x_row = x_first + c;
                    const int8_t *w_row = w_first + oc;
                    int64_t acc = p->bias[oc];
                    for (ky = 0; ky < rows; ++ky) {
                        const int16_t *x = x_row;
                        const int8_t *w = w_row;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += (int32_t)*w * (int32_t)*x;
                            x += x_step_x;
                            w += out_c;
                        }
                        x_row += x_step_y;
                        w_row += w_step_y;
                    }
                    *output++ = edgeq_requantize_s16(acc, requant->multiplier[oc],
                                                     requant->shift[oc],
                                                     requant->act_min, requant->act_max);
                }
            }
        }
    }
}
