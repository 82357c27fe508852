/* edgeq kernel: int8 depthwise 2-D convolution, NHWC input, 1HWO weights. */
#include "edgeq_depthwise_conv2d.h"
#include "edgeq_support.h"

/* acc[k] = sum over the valid taps of w[k] * (x[k] + offset) for four adjacent channels:
 * rows (ky) advance x by x_step_y and w by w_step_y, columns by x_step_x and w_step_x. */
static EDGEQ_NOINLINE void taps4(const int8_t *x_row, const int8_t *w_row, int32_t rows,
                                 int32_t cols, int32_t x_step_y, int32_t x_step_x,
                                 int32_t w_step_y, int32_t w_step_x, int32_t offset,
                                 int32_t acc[4])
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t r, c;
    for (r = 0; r < rows; ++r) {
        const int8_t *x = x_row;
        const int8_t *w = w_row;
        for (c = 0; c < cols; ++c) {
            a0 += (int32_t)w[0] * ((int32_t)x[0] + offset);
            a1 += (int32_t)w[1] * ((int32_t)x[1] + offset);
            a2 += (int32_t)w[2] * ((int32_t)x[2] + offset);
            a3 += (int32_t)w[3] * ((int32_t)x[3] + offset);
            x += x_step_x;
            w += w_step_x;
        }
        x_row += x_step_y;
        w_row += w_step_y;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

void edgeq_depthwise_conv2d_s8(const edgeq_depthwise_conv2d_params *params, const int8_t *input,
                               int8_t *output)
{
    /* a local copy: the output may overlap the input (no restrict), so stores through it
     * could otherwise change the parameters as far as the compiler knows */
    const edgeq_depthwise_conv2d_params local = *params;
    const edgeq_depthwise_conv2d_params *const p = &local;
    const edgeq_conv_geometry *geo = &p->geometry;
    const edgeq_channel_requant *requant = &p->requant;
    const int32_t in_w = geo->input_width;
    const int32_t in_c = geo->input_channels;
    const int32_t mult = p->depth_multiplier;
    const int32_t out_c = in_c * mult;
    const int32_t kw = geo->kernel_width;
    const int32_t offset = p->input_offset;
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
            const int8_t *x_first;
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
            c = 0;
            if (mult == 1) {
                /* four channels at a time: adjacent bytes of input and weights */
                for (; c + 4 <= in_c; c += 4) {
                    int32_t acc[4];
                    taps4(x_first + c, w_first + c, rows, kx1 - kx0, x_step_y, x_step_x,
                          w_step_y, out_c, offset, acc);
                    output[0] = edgeq_requantize(acc[0] + p->bias[c], requant->multiplier[c],
                                                 requant->shift[c], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[1] = edgeq_requantize(acc[1] + p->bias[c + 1],
                                                 requant->multiplier[c + 1],
                                                 requant->shift[c + 1], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[2] = edgeq_requantize(acc[2] + p->bias[c + 2],
                                                 requant->multiplier[c + 2],
                                                 requant->shift[c + 2], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[3] = edgeq_requantize(acc[3] + p->bias[c + 3],
                                                 requant->multiplier[c + 3],
                                                 requant->shift[c + 3], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output += 4;
                }
            }
            /* remaining channels (all of them when depth_multiplier > 1), one output at a time */
            for (; c < in_c; ++c) {
                for (m = 0; m < mult; ++m) {
                    const int32_t oc = c * mult + m;
                    const int8_t *x_row = x_first + c;
                    const int8_t *w_row = w_first + oc;
                    int32_t acc = 0;
                    for (ky = 0; ky < rows; ++ky) {
                        const int8_t *x = x_row;
                        const int8_t *w = w_row;
                        for (kx = kx0; kx < kx1; ++kx) {
                            acc += (int32_t)*w * ((int32_t)*x + offset);
                            x += x_step_x;
                            w += out_c;
                        }
                        x_row += x_step_y;
                        w_row += w_step_y;
                    }
                    *output++ = edgeq_requantize(acc + p->bias[oc], requant->multiplier[oc],
                                                 requant->shift[oc], p->output_offset,
                                                 requant->act_min, requant->act_max);
                }
            }
        }
    }
}
