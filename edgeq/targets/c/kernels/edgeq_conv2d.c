/* edgeq kernel: int8 2-D convolution (regular or grouped), NHWC input, OHWI weights. */
#include "edgeq_conv2d.h"
#include "edgeq_support.h"

/* acc[k] += the sum over the valid taps of one output pixel for output channel k of the
 * `channels` (1 or 4) channels whose weights start at `filter`.  A kernel row's valid taps are
 * one contiguous run of input and weights when there is one group and no horizontal dilation. */
static EDGEQ_NOINLINE void conv_taps(const edgeq_conv2d_params *p, const int8_t *input,
                                     const int8_t *filter, int32_t filter_size, int32_t channels,
                                     int32_t in_y0, int32_t in_x0, int32_t ky0, int32_t ky1,
                                     int32_t kx0, int32_t kx1, int32_t acc[4])
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const int32_t in_w = geo->input_width;
    const int32_t in_c = geo->input_channels;
    const int32_t group_in_c = in_c / p->groups;
    const int32_t dense = p->groups == 1 && geo->dilation_width == 1;
    int32_t ky, kx;

    for (ky = ky0; ky < ky1; ++ky) {
        const int8_t *x_row = input + (in_y0 + ky * geo->dilation_height) * in_w * in_c;
        const int8_t *w_row = filter + ky * geo->kernel_width * group_in_c;
        for (kx = kx0; kx < kx1; ++kx) {
            const int8_t *x = x_row + (in_x0 + kx * geo->dilation_width) * in_c;
            const int8_t *w = w_row + kx * group_in_c;
            const int32_t n = dense ? (kx1 - kx0) * in_c : group_in_c;
            if (channels == 4) {
                edgeq_dot4_s8(x, w, filter_size, n, p->input_offset, acc);
            } else {
                acc[0] += edgeq_dot_s8(x, w, n, p->input_offset);
            }
            if (dense) {
                break;      /* the whole row was one run */
            }
        }
    }
}

void edgeq_conv2d_s8(const edgeq_conv2d_params *params, const int8_t *input, int8_t *output)
{
    /* a local copy: the output may overlap the input (no restrict), so stores through it
     * could otherwise change the parameters as far as the compiler knows */
    const edgeq_conv2d_params local = *params;
    const edgeq_conv2d_params *const p = &local;
    const edgeq_conv_geometry *geo = &p->geometry;
    const edgeq_channel_requant *requant = &p->requant;
    const int32_t out_c = p->output_channels;
    const int32_t group_in_c = geo->input_channels / p->groups;
    const int32_t group_out_c = out_c / p->groups;
    const int32_t filter_size = geo->kernel_height * geo->kernel_width * group_in_c;
    const edgeq_requant_s8 rq = {p->bias, requant->multiplier, requant->shift, p->output_offset,
                                 requant->act_min, requant->act_max};
    int32_t oy, ox, oc;

    if (geo->kernel_height == 1 && geo->kernel_width == 1 && p->groups == 1 && geo->pad_top == 0
        && geo->pad_left == 0 && geo->stride_height == 1 && geo->stride_width == 1) {
        /* pointwise: a matrix product, one row per pixel */
        const int32_t pixels = geo->output_height * geo->output_width;
        int32_t i;
        for (i = 0; i < pixels; ++i) {
            edgeq_matrix_row_s8(input + i * geo->input_channels, p->weights, geo->input_channels,
                                out_c, p->input_offset, &rq, output + i * out_c);
        }
        return;
    }

    for (oy = 0; oy < geo->output_height; ++oy) {
        int32_t ky0, ky1;
        const int32_t in_y0 = edgeq_window_rows(geo, oy, &ky0, &ky1);
        for (ox = 0; ox < geo->output_width; ++ox) {
            const int32_t dense = p->groups == 1 && geo->dilation_width == 1;
            int32_t kx0, kx1;
            const int32_t in_x0 = edgeq_window_cols(geo, ox, &kx0, &kx1);
            if (dense && ky1 - ky0 == 1 && kx1 > kx0) {
                /* a single valid kernel row: one contiguous run for every output channel */
                const int32_t row = (in_y0 + ky0 * geo->dilation_height) * geo->input_width;
                const int32_t n = (kx1 - kx0) * geo->input_channels;
                const int32_t w_skip = (ky0 * geo->kernel_width + kx0) * geo->input_channels;
                const int8_t *x = input + (row + in_x0 + kx0) * geo->input_channels;
                for (oc = 0; oc + 4 <= out_c; oc += 4) {
                    edgeq_row4_s8(x, p->weights + oc * filter_size + w_skip, filter_size, n,
                                  p->input_offset, &rq, oc, output + oc);
                }
                for (; oc < out_c; ++oc) {
                    output[oc] = edgeq_requantize( p->bias[oc] + edgeq_dot_s8(x,
                                                  p->weights + oc * filter_size + w_skip, n,
                                                  p->input_offset), requant->multiplier[oc],
                                                  requant->shift[oc], p->output_offset,
                                                  requant->act_min, requant->act_max);
                }
                output += out_c;
                continue;
            }
            for (oc = 0; oc < out_c;) {
                /* four output channels at a time while they stay in one group */
                const int8_t *group_input = input + (oc / group_out_c) * group_in_c;
                int32_t acc[4];
                acc[0] = p->bias[oc];
                if ((oc % group_out_c) + 4 <= group_out_c) {
                    acc[1] = p->bias[oc + 1];
                    acc[2] = p->bias[oc + 2];
                    acc[3] = p->bias[oc + 3];
                    conv_taps(p, group_input, p->weights + oc * filter_size, filter_size, 4,
                              in_y0, in_x0, ky0, ky1, kx0, kx1, acc);
                    output[0] = edgeq_requantize(acc[0], requant->multiplier[oc],
                                                 requant->shift[oc], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[1] = edgeq_requantize(acc[1], requant->multiplier[oc + 1],
                                                 requant->shift[oc + 1], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[2] = edgeq_requantize(acc[2], requant->multiplier[oc + 2],
                                                 requant->shift[oc + 2], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output[3] = edgeq_requantize(acc[3], requant->multiplier[oc + 3],
                                                 requant->shift[oc + 3], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    output += 4;
                    oc += 4;
                } else {
                    conv_taps(p, group_input, p->weights + oc * filter_size, filter_size, 1,
                              in_y0, in_x0, ky0, ky1, kx0, kx1, acc);
                    *output++ = edgeq_requantize(acc[0], requant->multiplier[oc],
                                                 requant->shift[oc], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    ++oc;
                }
            }
        }
    }
}
