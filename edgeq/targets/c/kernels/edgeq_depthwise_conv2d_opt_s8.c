/*
 * edgeq kernel: int8 depthwise 2-D convolution, depth multiplier 1, the input offset folded
 * into the biases, weights in groups of four channels (edgeq_depthwise_conv2d.h).  3 x 3
 * layers on whole groups of four channels with the fast requantization and no clamp take
 * edgeq_depthwise_conv2d_3x3_s8 instead (the lowering picks it: a model without other
 * depthwise layers links no code of this file).
 *
 * Traversal (a guarantee other code relies on: keep it): output pixels in raster order, the
 * channels of a pixel in increasing order, so output bytes are written at increasing
 * addresses.  Output pixel (oy, ox) reads only input rows oy * stride_height - pad_top + ky *
 * dilation_height (ky < kernel_height, inside the input), and all its reads of a channel
 * group come before that group's writes; no pixel reads an input row above the first row
 * of any earlier pixel's window.
 *
 * DSP path: four channels at a time over a table of the taps' offsets (the pad word for taps
 * in the padding); a tap is one 32-bit load of four input values and one of four weights,
 * two SXTB16 each and four 16 x 16 multiply-accumulates (EDGEQ_DW_TAP).  The C % 4 channels
 * left and the portable path: one channel at a time.
 */
#include "edgeq_depthwise_conv2d.h"
#include "edgeq_support.h"
#include "edgeq_depthwise_thumb2.h"     /* EDGEQ_DW_TAP */

/* The weight of tap t (kernel row-major) of channel c in the generator's layout. */
static int32_t weight_at(const edgeq_depthwise_conv2d_opt_params *p, int32_t taps, int32_t t, int32_t c)
{
    const int32_t groups = p->geometry.input_channels & ~3;
    if (c < groups) {
        return p->weights[(c >> 2) * taps * 4 + t * 4 + (c & 3)];
    }
    return p->weights[groups * taps + t * (p->geometry.input_channels - groups) + (c - groups)];
}

/* Output stage of one channel. */
static EDGEQ_ALWAYS_INLINE int32_t output_of(const edgeq_depthwise_conv2d_opt_params *p, int32_t acc, int32_t c)
{
    const int32_t shift = p->requant.shift[c];
    int32_t y;
    if (!p->fast_requant) {
        return edgeq_requantize(acc, p->requant.multiplier[c], shift, p->output_offset, p->requant.act_min,
                                p->requant.act_max);
    }
    y = edgeq_requantize_fast(acc, p->requant.multiplier[c], -shift,
                              (int32_t)((uint32_t)(2 * p->output_offset + 1) << (-shift - 1)));
    y = y < p->requant.act_min ? p->requant.act_min : y;
    return y > p->requant.act_max ? p->requant.act_max : y;
}

/* Channel c of output pixel (oy, ox), one tap at a time. */
static int8_t one_channel(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input, int32_t oy,
                          int32_t ox, int32_t c)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t ch = g->input_channels;
    const int32_t taps = g->kernel_height * g->kernel_width;
    int32_t acc = p->bias[c];
    int32_t ky, kx;
    for (ky = 0; ky < g->kernel_height; ++ky) {
        const int32_t iy = oy * g->stride_height - g->pad_top + ky * g->dilation_height;
        for (kx = 0; kx < g->kernel_width; ++kx) {
            const int32_t ix = ox * g->stride_width - g->pad_left + kx * g->dilation_width;
            const int32_t w = weight_at(p, taps, ky * g->kernel_width + kx, c);
            const int32_t inside = iy >= 0 && iy < g->input_height && ix >= 0 && ix < g->input_width;
            acc += w * (inside ? input[(iy * g->input_width + ix) * ch + c] : p->pad_value);
        }
    }
    return (int8_t)output_of(p, acc, c);
}

#if EDGEQ_DSP

/* A layer's output stage, in locals: the kernel's int8 stores may alias anything, so the
 * loops must not reread the parameter struct after each one. */
typedef struct {
    const int32_t *bias, *multiplier;
    const int8_t *shift;
    uint32_t offset2;                /* 2 * output_offset + 1 */
    int32_t output_offset, act_min, act_max, fast;
    int32_t clamped;                 /* the activation bounds are narrower than int8 */
} stage;

static EDGEQ_ALWAYS_INLINE stage stage_of(const edgeq_depthwise_conv2d_opt_params *p)
{
    stage st;
    st.bias = p->bias;
    st.multiplier = p->requant.multiplier;
    st.shift = p->requant.shift;
    st.offset2 = (uint32_t)(2 * p->output_offset + 1);
    st.output_offset = p->output_offset;
    st.act_min = p->requant.act_min;
    st.act_max = p->requant.act_max;
    st.fast = p->fast_requant;
    st.clamped = st.act_min > EDGEQ_INT8_MIN || st.act_max < EDGEQ_INT8_MAX;
    return st;
}

static EDGEQ_ALWAYS_INLINE int32_t fast_output(const stage *st, int32_t acc, int32_t c, int32_t clamped)
{
    const int32_t e = -st->shift[c];
    const int32_t y = edgeq_requantize_fast(acc, st->multiplier[c], e, (int32_t)(st->offset2 << (e - 1)));
    if (!clamped) {
        return edgeq_ssat8(y);
    }
    return y < st->act_min ? st->act_min : (y > st->act_max ? st->act_max : y);
}

/* The four outputs of channels c..c+3. */
static EDGEQ_ALWAYS_INLINE void store4(const stage *st, int32_t c, int32_t a0, int32_t a1, int32_t a2,
                                       int32_t a3, int8_t *out)
{
    int32_t q;
    if (st->fast && !st->clamped) {
        out[0] = (int8_t)fast_output(st, a0, c, 0);
        out[1] = (int8_t)fast_output(st, a1, c + 1, 0);
        out[2] = (int8_t)fast_output(st, a2, c + 2, 0);
        out[3] = (int8_t)fast_output(st, a3, c + 3, 0);
        return;
    }
    if (st->fast) {
        out[0] = (int8_t)fast_output(st, a0, c, 1);
        out[1] = (int8_t)fast_output(st, a1, c + 1, 1);
        out[2] = (int8_t)fast_output(st, a2, c + 2, 1);
        out[3] = (int8_t)fast_output(st, a3, c + 3, 1);
        return;
    }
    for (q = 0; q < 4; ++q) {
        const int32_t acc = q == 0 ? a0 : (q == 1 ? a1 : (q == 2 ? a2 : a3));
        out[q] = edgeq_requantize(acc, st->multiplier[c + q], st->shift[c + q], st->output_offset, st->act_min,
                                  st->act_max);
    }
}

/* Every channel group of a pixel: tap t at x + offsets[t], or the pad word where
 * offsets[t] < 0 (the tap lies in the padding). */
static EDGEQ_NOINLINE void pixel_taps(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *x,
                                      const int32_t *offsets, int32_t taps, int8_t *out)
{
    const stage st = stage_of(p);
    const int32_t groups = p->geometry.input_channels & ~3;
    const uint32_t pad = 0x01010101u * (uint8_t)p->pad_value;
    const uint32_t *w = (const uint32_t *)(const void *)p->weights;
    int32_t c, t;
    for (c = 0; c < groups; c += 4) {
        int32_t a0 = st.bias[c], a1 = st.bias[c + 1], a2 = st.bias[c + 2], a3 = st.bias[c + 3];
        for (t = 0; t < taps; ++t, ++w) {
            const int32_t at = offsets[t];
            EDGEQ_DW_TAP(at >= 0 ? edgeq_load32(x + at + c) : pad, *w)
        }
        store4(&st, c, a0, a1, a2, a3, out + c);
    }
}

#endif

/* Channels [c, C) of output pixel (oy, ox) one at a time (all of them on the portable path). */
static void pixel_rest(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input, int32_t oy, int32_t ox,
                       int32_t c, int8_t *out)
{
    for (; c < p->geometry.input_channels; ++c) {
        out[c] = one_channel(p, input, oy, ox, c);
    }
}

void edgeq_depthwise_conv2d_opt_s8(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input,
                                   int8_t *output)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t ch = g->input_channels;
    const int32_t oh = g->output_height, ow = g->output_width;
    int32_t oy, ox;
#if EDGEQ_DSP
    const int32_t taps = g->kernel_height * g->kernel_width;
    const int32_t groups = taps <= EDGEQ_DEPTHWISE_MAX_TAPS ? ch & ~3 : 0;
    int32_t offsets[EDGEQ_DEPTHWISE_MAX_TAPS];
#else
    const int32_t groups = 0;
#endif
    for (oy = 0; oy < oh; ++oy) {
        for (ox = 0; ox < ow; ++ox, output += ch) {
#if EDGEQ_DSP
            if (groups > 0) {
                const int32_t iy0 = oy * g->stride_height - g->pad_top;
                const int32_t ix0 = ox * g->stride_width - g->pad_left;
                int32_t ky, kx, t = 0;
                for (ky = 0; ky < g->kernel_height; ++ky) {
                    const int32_t iy = iy0 + ky * g->dilation_height;
                    for (kx = 0; kx < g->kernel_width; ++kx, ++t) {
                        const int32_t ix = ix0 + kx * g->dilation_width;
                        const int32_t in = iy >= 0 && iy < g->input_height && ix >= 0 && ix < g->input_width;
                        offsets[t] = in ? ((iy * g->input_width + ix) * ch) : -1;
                    }
                }
                pixel_taps(p, input, offsets, taps, output);
            }
#endif
            pixel_rest(p, input, oy, ox, groups, output);
        }
    }
}
