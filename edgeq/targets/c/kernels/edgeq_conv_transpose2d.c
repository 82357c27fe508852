/* edgeq kernel: int8 2-D transposed convolution, NHWC input, OHWI filters (TFLite
 * TRANSPOSE_CONV arithmetic).  Computed as a gather: output pixel (oy, ox) sums the taps
 * (ky, kx) whose input position iy = (oy + pad_top - ky * dilation) / stride is a whole
 * number inside the input; the int32 sums equal TFLite's scatter into its accumulator. */
#include "edgeq_conv_transpose2d.h"
#include "edgeq_support.h"

/* Input index reached by kernel tap k from output index o, or -1. */
static int32_t source_index(int32_t o, int32_t pad, int32_t k, int32_t dilation, int32_t stride,
                            int32_t size)
{
    const int32_t t = o + pad - k * dilation;
    int32_t i;
    if (t < 0 || t % stride != 0) {
        return -1;
    }
    i = t / stride;
    return i < size ? i : -1;
}

/* acc[k] += the taps of output pixel (oy, ox) for the `channels` (1 or 4) output channels
 * whose filters start at `filter` and whose group's input channels start at `input`. */
static EDGEQ_NOINLINE void transposed_taps(const edgeq_conv2d_params *p,
                                           const int8_t *input, const int8_t *filter,
                                           int32_t filter_size, int32_t channels, int32_t oy,
                                           int32_t ox, int32_t acc[4])
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const int32_t group_in_c = geo->input_channels / p->groups;
    int32_t ky, kx;

    for (ky = 0; ky < geo->kernel_height; ++ky) {
        const int32_t iy = source_index(oy, geo->pad_top, ky, geo->dilation_height,
                                        geo->stride_height, geo->input_height);
        if (iy < 0) {
            continue;
        }
        for (kx = 0; kx < geo->kernel_width; ++kx) {
            const int32_t ix = source_index(ox, geo->pad_left, kx, geo->dilation_width,
                                            geo->stride_width, geo->input_width);
            const int8_t *x;
            const int8_t *w;
            if (ix < 0) {
                continue;
            }
            x = input + (iy * geo->input_width + ix) * geo->input_channels;
            w = filter + (ky * geo->kernel_width + kx) * group_in_c;
            if (channels == 4) {
                edgeq_dot4_s8(x, w, filter_size, group_in_c, p->input_offset, acc);
            } else {
                acc[0] += edgeq_dot_s8(x, w, group_in_c, p->input_offset);
            }
        }
    }
}

void edgeq_conv_transpose2d_s8(const edgeq_conv2d_params *p, const int8_t *input,
                               int8_t *EDGEQ_RESTRICT output)
{
    const edgeq_conv_geometry *geo = &p->geometry;
    const edgeq_channel_requant *requant = &p->requant;
    const int32_t out_c = p->output_channels;
    const int32_t group_in_c = geo->input_channels / p->groups;
    const int32_t group_out_c = out_c / p->groups;
    const int32_t filter_size = geo->kernel_height * geo->kernel_width * group_in_c;
    int32_t oy, ox, oc;

    for (oy = 0; oy < geo->output_height; ++oy) {
        for (ox = 0; ox < geo->output_width; ++ox) {
            for (oc = 0; oc < out_c;) {
                const int8_t *group_input = input + (oc / group_out_c) * group_in_c;
                int32_t acc[4];
                acc[0] = p->bias[oc];
                if ((oc % group_out_c) + 4 <= group_out_c) {
                    int32_t k;
                    acc[1] = p->bias[oc + 1];
                    acc[2] = p->bias[oc + 2];
                    acc[3] = p->bias[oc + 3];
                    transposed_taps(p, group_input, p->weights + oc * filter_size, filter_size, 4,
                                    oy, ox, acc);
                    for (k = 0; k < 4; ++k) {
                        output[k] = edgeq_requantize(acc[k], requant->multiplier[oc + k],
                                                     requant->shift[oc + k], p->output_offset,
                                                     requant->act_min, requant->act_max);
                    }
                    output += 4;
                    oc += 4;
                } else {
                    transposed_taps(p, group_input, p->weights + oc * filter_size, filter_size, 1,
                                    oy, ox, acc);
                    *output++ = edgeq_requantize(acc[0], requant->multiplier[oc],
                                                 requant->shift[oc], p->output_offset,
                                                 requant->act_min, requant->act_max);
                    ++oc;
                }
            }
        }
    }
}
