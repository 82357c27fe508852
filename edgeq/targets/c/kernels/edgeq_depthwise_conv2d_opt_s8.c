/*
 * edgeq kernel: int8 depthwise 2-D convolution, depth multiplier 1, the input offset folded
 * into the biases, weights in groups of four channels (edgeq_depthwise_conv2d.h).
 *
 * Traversal (a guarantee other code relies on: keep it): output pixels in raster order, the
 * channels of a pixel in increasing order, so output bytes are written at increasing
 * addresses.  Output pixel (oy, ox) reads only input rows oy * stride_height - pad_top + ky *
 * dilation_height (ky < kernel_height, inside the input), and all its reads of a channel
 * group come before that group's writes; no pixel reads an input row above the first row
 * of any earlier pixel's window.
 *
 * DSP path: four channels at a time; a tap is one 32-bit load of four input values and one of
 * four weights, two SXTB16 each and four 16 x 16 multiply-accumulates (SMLABB / SMLATT).
 * 3 x 3 layers with the fast requantization and no clamp: runs of pixels whose window lies
 * inside the input take the unrolled taps (run3x3), border pixels unrolled taps with a mask
 * of the taps inside the input, the pad word elsewhere (border3x3); on Arm cores with the DSP
 * extension both are Thumb-2 functions (edgeq_depthwise_conv2d_thumb2.c: GCC spilled the tap
 * pointers of the C form), elsewhere their C models below.  Other layers loop over a tap
 * table.  Portable path: one channel at a time.
 */
#include "edgeq_depthwise_conv2d.h"
#include "edgeq_support.h"
#include "edgeq_depthwise_thumb2.h"

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

/* One tap of four channels: input word v, weight word w. */
#define EDGEQ_DW_TAP(v, w)                                                                  \
    {                                                                                       \
        const uint32_t v_ = (v), w_ = (w);                                                  \
        const int32_t ve = edgeq_sxtb16(v_), vo = edgeq_sxtb16_ror8(v_);                    \
        const int32_t we = edgeq_sxtb16(w_), wo = edgeq_sxtb16_ror8(w_);                    \
        a0 = edgeq_smlabb(ve, we, a0);                                                      \
        a2 = edgeq_smlatt(ve, we, a2);                                                      \
        a1 = edgeq_smlabb(vo, wo, a1);                                                      \
        a3 = edgeq_smlatt(vo, wo, a3);                                                      \
    }

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

/* The 9 taps of one channel group of a window inside the input (the C model of the Thumb-2
 * functions of edgeq_depthwise_conv2d_thumb2.c). */
#define EDGEQ_DW_INTERIOR_TAPS(x, w, col, row)                                              \
    {                                                                                       \
        const int8_t *q_ = (x);                                                             \
        EDGEQ_DW_TAP(edgeq_load32(q_), (w)[0])                                              \
        EDGEQ_DW_TAP(edgeq_load32(q_ + (col)), (w)[1])                                      \
        EDGEQ_DW_TAP(edgeq_load32(q_ + 2 * (col)), (w)[2])                                  \
        q_ += (row);                                                                        \
        EDGEQ_DW_TAP(edgeq_load32(q_), (w)[3])                                              \
        EDGEQ_DW_TAP(edgeq_load32(q_ + (col)), (w)[4])                                      \
        EDGEQ_DW_TAP(edgeq_load32(q_ + 2 * (col)), (w)[5])                                  \
        q_ += (row);                                                                        \
        EDGEQ_DW_TAP(edgeq_load32(q_), (w)[6])                                              \
        EDGEQ_DW_TAP(edgeq_load32(q_ + (col)), (w)[7])                                      \
        EDGEQ_DW_TAP(edgeq_load32(q_ + 2 * (col)), (w)[8])                                  \
    }

/* Every channel group of one pixel whose 3 x 3 window lies inside the input (fast
 * requantization, no clamp): x at its first tap, taps `col` bytes apart in a kernel row,
 * kernel rows `row` bytes apart. */
static EDGEQ_ALWAYS_INLINE void pixel3x3(const stage *st, const uint32_t *w, int32_t groups, const int8_t *x,
                                         int32_t col, int32_t row, int8_t *out)
{
    const int32_t *bias = st->bias;
    const int32_t *multiplier = st->multiplier;
    const int8_t *shift = st->shift;
    const uint32_t *end = w + 9 * (groups >> 2);
    for (; w != end; w += 9, x += 4, bias += 4, multiplier += 4, shift += 4, out += 4) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        EDGEQ_DW_INTERIOR_TAPS(x, w, col, row)
        fast4(multiplier, shift, st->offset2, a0, a1, a2, a3, out);
    }
}

/* Every channel group of n pixels of a row whose 3 x 3 windows lie inside the input, one
 * pixel after the other (fast requantization, no clamp): x at the first tap of the first,
 * taps `col` bytes apart in a kernel row, kernel rows `row` bytes apart, pixels `step` bytes
 * apart in the input; outputs ch bytes apart (the channels beyond the groups are left to
 * pixel_rest). */
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
    a.x_gap = step - (ch & ~3);
    a.groups = ch >> 2;
    a.pixels = n;
    a.offset2 = 2 * p->output_offset + 1;
    a.out_gap = ch & 3;
    edgeq_depthwise_run3x3_s8(&a);
#else
    const stage st = stage_of(p);
    const uint32_t *w = (const uint32_t *)(const void *)p->weights;
    for (; n > 0; --n, x += step, out += ch) {
        pixel3x3(&st, w, ch & ~3, x, col, row, out);
    }
#endif
}

/* Every channel group of a pixel whose 3 x 3 window crosses the border of the input (fast
 * requantization, no clamp): bit ky * 3 + kx of `inside` is set where tap (ky, kx) lies
 * inside the input, at input[at + ky * row + kx * col]; the pad word elsewhere. */
static EDGEQ_NOINLINE void border3x3(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input, int32_t at,
                                     uint32_t inside, int32_t col, int32_t row, int8_t *out)
{
    const int32_t groups = p->geometry.input_channels & ~3;
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
    a.groups = groups >> 2;
    a.pad = (int32_t)pad;
    a.offset2 = 2 * p->output_offset + 1;
    for (ky = 0; ky < 3; ++ky) {     /* bits 0, 1, 2 of the kernel row -> N, Z, C */
        const uint32_t r = (inside >> (3 * ky)) & 7u;
        a.inside[ky] = (int32_t)(((r & 1u) << 31) | ((r & 2u) << 29) | ((r & 4u) << 27));
    }
    edgeq_depthwise_border3x3_s8(&a);
#else
    const stage st = stage_of(p);
    const uint32_t *w = (const uint32_t *)(const void *)p->weights;
    int32_t c;
#define EDGEQ_DW_EDGE(bit, i) ((inside & (bit)) ? edgeq_load32(input + (i)) : pad)
    for (c = 0; c < groups; c += 4, w += 9) {
        int32_t a0 = st.bias[c], a1 = st.bias[c + 1], a2 = st.bias[c + 2], a3 = st.bias[c + 3];
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
        fast4(st.multiplier + c, st.shift + c, st.offset2, a0, a1, a2, a3, out + c);
    }
#undef EDGEQ_DW_EDGE
#endif
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

#undef EDGEQ_DW_TAP

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
    const int32_t groups = ch & ~3;
    const int32_t col = g->dilation_width * ch;
    const int32_t row = g->dilation_height * g->input_width * ch;
    /* 3 x 3 windows with the fast requantization and no clamp take the unrolled paths */
    const int32_t three = g->kernel_height == 3 && g->kernel_width == 3 && p->fast_requant
                          && p->requant.act_min == EDGEQ_INT8_MIN && p->requant.act_max == EDGEQ_INT8_MAX;
    int32_t offsets[EDGEQ_DEPTHWISE_MAX_TAPS];
#endif
    for (oy = 0; oy < oh; ++oy) {
        for (ox = 0; ox < ow; ++ox, output += ch) {
#if EDGEQ_DSP
            const int32_t iy0 = oy * g->stride_height - g->pad_top;
            const int32_t ix0 = ox * g->stride_width - g->pad_left;
            const int32_t rows_in = iy0 >= 0 && iy0 + (g->kernel_height - 1) * g->dilation_height < g->input_height;
            const int32_t inside = rows_in && ix0 >= 0 && ix0 + (g->kernel_width - 1) * g->dilation_width < g->input_width;
            if (groups > 0 && inside && three) {
                /* this pixel and the following ones whose windows lie inside the input (one
                 * pixel at a time when channels are left over: outputs stay in order) */
                int32_t n = 1, i;
                while (groups == ch && ox + n < ow && ix0 + n * g->stride_width + 2 * g->dilation_width < g->input_width) {
                    ++n;
                }
                run3x3(p, input + (iy0 * g->input_width + ix0) * ch, col, row, g->stride_width * ch, output, n);
                for (i = 0; i < n && groups < ch; ++i) {
                    pixel_rest(p, input, oy, ox + i, groups, output + i * ch);
                }
                ox += n - 1;
                output += (n - 1) * ch;
                continue;
            } else if (groups > 0 && three) {
                uint32_t in = 0;
                int32_t ky, kx;
                for (ky = 0; ky < 3; ++ky) {
                    const int32_t iy = iy0 + ky * g->dilation_height;
                    for (kx = 0; kx < 3; ++kx) {
                        const int32_t ix = ix0 + kx * g->dilation_width;
                        const uint32_t tap = iy >= 0 && iy < g->input_height && ix >= 0 && ix < g->input_width;
                        in |= tap << (ky * 3 + kx);
                    }
                }
                border3x3(p, input, (iy0 * g->input_width + ix0) * ch, in, col, row, output);
            } else if (groups > 0 && taps <= EDGEQ_DEPTHWISE_MAX_TAPS) {
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
            } else {
                pixel_rest(p, input, oy, ox, 0, output);
                continue;
            }
            pixel_rest(p, input, oy, ox, groups, output);
#else
            pixel_rest(p, input, oy, ox, 0, output);
#endif
        }
    }
}
