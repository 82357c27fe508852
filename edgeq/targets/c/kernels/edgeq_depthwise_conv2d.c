/* edgeq kernel: int8 depthwise 2-D convolution, NHWC input, 1HWO weights. */
#include "edgeq_kernels.h"

/* First and one-past-last kernel tap whose input row/column lies inside [0, size). */
static void valid_taps(int32_t start, int32_t dilation, int32_t kernel, int32_t size,
                       int32_t *first, int32_t *end)
{
    int32_t k0 = 0;
    int32_t k1 = kernel;
    if (start < 0) {
        k0 = (-start + dilation - 1) / dilation;
    }
    if (start + (kernel - 1) * dilation >= size) {
        k1 = start >= size ? 0 : (size - start + dilation - 1) / dilation;
    }
    *first = k0;
    *end = k1 > k0 ? k1 : k0;
}

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

void edgeq_depthwise_conv2d_s8(const edgeq_depthwise_conv2d_params *p, const int8_t *input,
                               int8_t *EDGEQ_RESTRICT output)
{
    const int32_t in_w = p->input_width;
    const int32_t in_c = p->input_channels;
    const int32_t mult = p->depth_multiplier;
    const int32_t out_c = in_c * mult;
    const int32_t kw = p->kernel_width;
    const int32_t offset = p->input_offset;
    /* pointer steps between taps */
    const int32_t x_step_x = p->dilation_width * in_c;
    const int32_t x_step_y = p->dilation_height * in_w * in_c;
    const int32_t w_step_y = kw * out_c;
    int32_t oy, ox, c, m, ky, kx;

    for (oy = 0; oy < p->output_height; ++oy) {
        const int32_t in_y0 = oy * p->stride_height - p->pad_top;
        int32_t ky0, ky1;
        valid_taps(in_y0, p->dilation_height, p->kernel_height, p->input_height, &ky0, &ky1);
        for (ox = 0; ox < p->output_width; ++ox) {
            const int32_t in_x0 = ox * p->stride_width - p->pad_left;
            /* first valid tap of this output pixel, for channel 0 */
            const int8_t *x_first;
            const int8_t *w_first;
            int32_t kx0, kx1;
            int32_t rows = ky1 - ky0;
            valid_taps(in_x0, p->dilation_width, kw, in_w, &kx0, &kx1);
            if (rows > 0 && kx1 > kx0) {
                x_first = input + ((in_y0 + ky0 * p->dilation_height) * in_w
                                   + in_x0 + kx0 * p->dilation_width) * in_c;
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
                    output[0] = edgeq_requantize(acc[0] + p->bias[c], p->multiplier[c],
                                                 p->shift[c], p->output_offset, p->act_min,
                                                 p->act_max);
                    output[1] = edgeq_requantize(acc[1] + p->bias[c + 1], p->multiplier[c + 1],
                                                 p->shift[c + 1], p->output_offset, p->act_min,
                                                 p->act_max);
                    output[2] = edgeq_requantize(acc[2] + p->bias[c + 2], p->multiplier[c + 2],
                                                 p->shift[c + 2], p->output_offset, p->act_min,
                                                 p->act_max);
                    output[3] = edgeq_requantize(acc[3] + p->bias[c + 3], p->multiplier[c + 3],
                                                 p->shift[c + 3], p->output_offset, p->act_min,
                                                 p->act_max);
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
                    *output++ = edgeq_requantize(acc + p->bias[oc], p->multiplier[oc],
                                                 p->shift[oc], p->output_offset, p->act_min,
                                                 p->act_max);
                }
            }
        }
    }
}
