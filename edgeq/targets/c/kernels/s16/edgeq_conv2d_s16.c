/* edgeq kernel: 16x8 2-D convolution (regular or grouped), int16 NHWC input, int8 OHWI weights,
 * int64 biases and accumulators. */
#include "edgeq_conv2d.h"
#include "edgeq_support_s16.h"

/* acc[k] += the sum over the valid taps of one output pixel for output channel k of the
 * `channels` (1 or 4) channels whose weights start at `filter`.  A kernel row's valid taps are
 * one contiguous run of input and weights when there is one group and no horizontal dilation. */
static EDGEQ_NOINLINE void conv_taps(const edgeq_conv2d_s16_params *p, const int16_t *input,
                                     const int8_t *filter, int32_t filter_size, int32_t channels,
                                     int32_t in_y0, int32_t in_x0, int32_t ky0, int32_t ky1,
                                     int32_t kx0, int32_t kx1, int64_t acc[4])
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const int32_t in_w = geo->input_width;
    const int32_t in_c = geo->input_channels;
    const int32_t group_in_c = in_c / p->groups;
    const int32_t dense = p->groups == 1 && geo->dilation_width == 1;
    int32_t ky, kx;

    for (ky = ky0; ky < ky1; ++ky) {
        const int16_t *x_row = input + (in_y0 + ky * geo->dilation_height) * in_w * in_c;
        const int8_t *w_row = filter + ky * geo->kernel_width * group_in_c;
        for (kx = kx0; kx < kx1; ++kx) {
            const int16_t *x = x_row + (in_x0 + kx * geo->dilation_width) * in_c;
            const int8_t *w = w_row + kx * group_in_c;
            const int32_t n = dense ? (kx1 - kx0) * in_c : group_in_c;
            if (channels == 4) {
                edgeq_dot4_s16(x, w, filter_size, n, acc);
            } else {
                acc[0] += edgeq_dot_s16(x, w, n);
            }
            if (dense) {
                break;      /* the whole row was one run */
            }
        }
    }
}

void edgeq_conv2d_s16(const edgeq_conv2d_s16_params *p, const int16_t *input,
                      int16_t *output)
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const edgeq_channel_requant *requant = &p->requant;
    const int32_t out_c = p->output_channels;
    const int32_t group_in_c = geo->input_channels / p->groups;
    const int32_t group_out_c = out_c / p->groups;
    const int32_t filter_size = geo->kernel_height * geo->kernel_width * group_in_c;
    int32_t oy, ox, oc, k;

    for (oy = 0; oy < geo->output_height; ++oy) {
        int32_t ky0, ky1;
        const int32_t in_y0 = edgeq_window_rows(geo, oy, &ky0, &ky1);
        for (ox = 0; ox < geo->output_width; ++ox) {
            int32_t kx0, kx1;
            const int32_t in_x0 = edgeq_window_cols(geo, ox, &kx0, &kx1);
            for (oc = 0; oc < out_c;) {
                /* four output channels at a time while they stay in one group */
                const int16_t *group_input = input + (oc / group_out_c) * group_in_c;
                const int32_t channels = (oc % group_out_c) + 4 <= group_out_c ? 4 : 1;
                int64_t acc[4] = {0, 0, 0, 0};
                for (k = 0; k < channels; ++k) {
                    acc[k] = p->bias[oc + k];
                }
                conv_taps(p, group_input, p->weights + oc * filter_size, filter_size, channels,
                          in_y0, in_x0, ky0, ky1, kx0, kx1, acc);
                for (k = 0; k < channels; ++k) {
                    *output++ = edgeq_requantize_s16(acc[k], requant->multiplier[oc + k],
                                                     requant->shift[oc + k], requant->act_min,
                                                     requant->act_max);
                }
                oc += channels;
            }
        }
    }
}
