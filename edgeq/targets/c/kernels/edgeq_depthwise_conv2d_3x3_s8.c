/*
 * edgeq kernel: int8 depthwise 3 x 3 convolution on whole groups of four channels (C % 4 == 0),
 * depth multiplier 1, the input offset folded into the biases, the fast requantization and no
 * clamp: the parameters and weight layout of edgeq_depthwise_conv2d_opt_s8
 * (edgeq_depthwise_conv2d.h), which takes every other such layer.  Only these paths, so a
 * model whose depthwise layers all fit links no tap table, clamp or leftover-channel code.
 *
 * Traversal (a guarantee other code relies on: keep it): output pixels in raster order, the
 * channels of a pixel in increasing order, so output bytes are written at increasing
 * addresses.  Output pixel (oy, ox) reads only input rows oy * stride_height - pad_top + ky *
 * dilation_height (ky < 3, inside the input), and all its reads of a channel group come
 * before that group's writes; no pixel reads an input row above the first row of any
 * earlier pixel's window.
 *
 * DSP path: runs of pixels whose window lies inside the input take the unrolled taps
 * (run3x3), border pixels unrolled taps with a mask of the taps inside the input, the pad
 * word elsewhere (border3x3); on Arm cores with the DSP extension both are Thumb-2 functions
 * (edgeq_depthwise_conv2d_thumb2.c: GCC spilled the tap pointers of the C form), elsewhere
 * their C models below.  Portable path: one channel at a time.
 */
#include "edgeq_depthwise_conv2d.h"
#include "edgeq_support.h"
#include "edgeq_depthwise_thumb2.h"

#if EDGEQ_DSP

#if !EDGEQ_THUMB2_DSP
/* The four outputs of channels c..c+3, fast requantization, no clamp. */
static EDGEQ_ALWAYS_INLINE void fast4(const int32_t *multiplier, const int8_t *shift, uint32_t offset2,
                                      int32_t a0, int32_t a1, int32_t a2, int32_t a3, int8_t *out)
{
    const int32_t e0 = -shift[0], e1 = -shift[1], e2 = -shift[2], e3 = -shift[3];
    out[0] = (int8_t)edgeq_ssat8(edgeq_requantize_fast(a0, multiplier[0], e0, (int32_t)(offset2 << (e0 - 1))));
    out[1] = (int8_t)edgeq_ssat8(edgeq_requantize_fast(a1, multiplier[1], e1, (int32_t)(offset2 << (e1 - 1))));
    out[2] = (int8_t)edgeq_ssat8(edgeq_requantize_fast(a2, multiplier[2], e2, (int32_t)(offset2 << (e2 - 1))));
    out[3] = (int8_t)edgeq_ssat8(edgeq_requantize_fast(a3, multiplier[3], e3, (int32_t)(offset2 << (e3 - 1))));
}
#endif

/* Every channel group of n pixels of a row whose 3 x 3 windows lie inside the input, one
 * pixel after the other: x at the first tap of the first, taps `col` bytes apart in a kernel
 * row, kernel rows `row` bytes apart, pixels `step` bytes apart in the input. */
static EDGEQ_NOINLINE void run3x3(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *x, int32_t col,
                                  int32_t row, int32_t step, int8_t *out, int32_t n)
{
    const int32_t ch = p->geometry.input_channels;
#if EDGEQ_THUMB2_DSP
    edgeq_dw_run3x3_args a;
    a.x = x;
    a.w = p->weights;
    a.bias = p->bias;
    a.multiplier = p->requant.multiplier;
    a.shift = p->requant.shift;
    a.out = out;
    a.col = col;
    a.row = row;
    a.x_gap = step - ch;
    a.groups = ch >> 2;
    a.pixels = n;
    a.offset2 = 2 * p->output_offset + 1;
    a.out_gap = 0;
    edgeq_depthwise_run3x3_s8(&a);
#else
    const uint32_t offset2 = (uint32_t)(2 * p->output_offset + 1);
    for (; n > 0; --n, x += step) {
        const uint32_t *w = (const uint32_t *)(const void *)p->weights;
        const int8_t *q = x;
        int32_t c;
        for (c = 0; c < ch; c += 4, w += 9, q += 4, out += 4) {
            int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
            EDGEQ_DW_TAP(edgeq_load32(q), w[0])
            EDGEQ_DW_TAP(edgeq_load32(q + col), w[1])
            EDGEQ_DW_TAP(edgeq_load32(q + 2 * col), w[2])
            EDGEQ_DW_TAP(edgeq_load32(q + row), w[3])
            EDGEQ_DW_TAP(edgeq_load32(q + row + col), w[4])
            EDGEQ_DW_TAP(edgeq_load32(q + row + 2 * col), w[5])
            EDGEQ_DW_TAP(edgeq_load32(q + 2 * row), w[6])
            EDGEQ_DW_TAP(edgeq_load32(q + 2 * row + col), w[7])
            EDGEQ_DW_TAP(edgeq_load32(q + 2 * row + 2 * col), w[8])
            fast4(p->requant.multiplier + c, p->requant.shift + c, offset2, a0, a1, a2, a3, out);
        }
    }
#endif
}

/* Every channel group of a pixel whose 3 x 3 window crosses the border of the input: bit
 * ky * 3 + kx of `inside` is set where tap (ky, kx) lies inside the input, at input[at + ky *
 * row + kx * col]; the pad word elsewhere. */
static EDGEQ_NOINLINE void border3x3(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input, int32_t at,
                                     uint32_t inside, int32_t col, int32_t row, int8_t *out)
{
    const int32_t ch = p->geometry.input_channels;
    const uint32_t pad = 0x01010101u * (uint8_t)p->pad_value;
#if EDGEQ_THUMB2_DSP
    edgeq_dw_border3x3_args a;
    int32_t ky;
    a.input = input;
    a.w = p->weights;
    a.bias = p->bias;
    a.multiplier = p->requant.multiplier;
    a.shift = p->requant.shift;
    a.out = out;
    a.col = col;
    a.row = row;
    a.at = at;
    a.groups = ch >> 2;
    a.pad = (int32_t)pad;
    a.offset2 = 2 * p->output_offset + 1;
    for (ky = 0; ky < 3; ++ky) {     /* bits 0, 1, 2 of the kernel row -> N, Z, C */
        const uint32_t r = (inside >> (3 * ky)) & 7u;
        a.inside[ky] = (int32_t)(((r & 1u) << 31) | ((r & 2u) << 29) | ((r & 4u) << 27));
    }
    edgeq_depthwise_border3x3_s8(&a);
#else
    const uint32_t offset2 = (uint32_t)(2 * p->output_offset + 1);
    const uint32_t *w = (const uint32_t *)(const void *)p->weights;
    int32_t c;
#define EDGEQ_DW_EDGE(bit, i) ((inside & (bit)) ? edgeq_load32(input + (i)) : pad)
    for (c = 0; c < ch; c += 4, w += 9) {
        int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
        int32_t i = at + c;
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(1u, i), w[0])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(2u, i + col), w[1])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(4u, i + 2 * col), w[2])
        i += row;
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(8u, i), w[3])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(16u, i + col), w[4])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(32u, i + 2 * col), w[5])
        i += row;
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(64u, i), w[6])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(128u, i + col), w[7])
        EDGEQ_DW_TAP(EDGEQ_DW_EDGE(256u, i + 2 * col), w[8])
        fast4(p->requant.multiplier + c, p->requant.shift + c, offset2, a0, a1, a2, a3, out + c);
    }
#undef EDGEQ_DW_EDGE
#endif
}

#else   /* portable C */

/* Channel c of output pixel (oy, ox). */
static int8_t one_channel(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input, int32_t oy,
                          int32_t ox, int32_t c)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int8_t *w = p->weights + (c >> 2) * 36 + (c & 3);
    const int32_t e = -p->requant.shift[c];
    int32_t acc = p->bias[c];
    int32_t t;
    for (t = 0; t < 9; ++t, w += 4) {
        const int32_t iy = oy * g->stride_height - g->pad_top + (t / 3) * g->dilation_height;
        const int32_t ix = ox * g->stride_width - g->pad_left + (t % 3) * g->dilation_width;
        const int32_t inside = iy >= 0 && iy < g->input_height && ix >= 0 && ix < g->input_width;
        acc += *w * (inside ? input[(iy * g->input_width + ix) * g->input_channels + c] : p->pad_value);
    }
    return (int8_t)edgeq_ssat8(edgeq_requantize_fast(acc, p->requant.multiplier[c], e,
                                                     (int32_t)((uint32_t)(2 * p->output_offset + 1) << (e - 1))));
}

#endif

void edgeq_depthwise_conv2d_3x3_s8(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input,
                                   int8_t *output)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t ch = g->input_channels;
    const int32_t ih = g->input_height, iw = g->input_width;
    const int32_t dh = g->dilation_height, dw = g->dilation_width;
    int32_t oy, ox;
#if EDGEQ_DSP
    const int32_t col = dw * ch, row = dh * iw * ch;
#endif
    for (oy = 0; oy < g->output_height; ++oy) {
        const int32_t iy0 = oy * g->stride_height - g->pad_top;
        for (ox = 0; ox < g->output_width; ++ox, output += ch) {
#if EDGEQ_DSP
            const int32_t ix0 = ox * g->stride_width - g->pad_left;
            uint32_t in = 0;
            int32_t ky, kx;
            if (iy0 >= 0 && iy0 + 2 * dh < ih && ix0 >= 0 && ix0 + 2 * dw < iw) {
                /* this pixel and the following ones whose windows lie inside the input */
                int32_t n = 1;
                while (ox + n < g->output_width && ix0 + n * g->stride_width + 2 * dw < iw) {
                    ++n;
                }
                run3x3(p, input + (iy0 * iw + ix0) * ch, col, row, g->stride_width * ch, output, n);
                ox += n - 1;
                output += (n - 1) * ch;
                continue;
            }
            for (ky = 0; ky < 3; ++ky) {
                const int32_t iy = iy0 + ky * dh;
                for (kx = 0; kx < 3; ++kx) {
                    const int32_t ix = ix0 + kx * dw;
                    in |= (uint32_t)(iy >= 0 && iy < ih && ix >= 0 && ix < iw) << (ky * 3 + kx);
                }
            }
            border3x3(p, input, (iy0 * iw + ix0) * ch, in, col, row, output);
#else
            int32_t c;
            (void)iy0;
            (void)ih;
            (void)iw;
            (void)dh;
            (void)dw;
            for (c = 0; c < ch; ++c) {
                output[c] = one_channel(p, input, oy, ox, c);
            }
#endif
        }
    }
}
