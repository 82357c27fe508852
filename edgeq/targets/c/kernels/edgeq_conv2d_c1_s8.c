/*
 * edgeq kernel: int8 2-D convolution of a one-channel input (the stem of a grayscale image or
 * spectrogram model), computed straight from the input: no im2col column.
 *
 * With one channel a window row is kernel_width consecutive input bytes, so a 32-bit load
 * gives 4 taps and SXTB16 / SXTB16 ROR 8 widen them to the int16 pairs (x0, x2), (x1, x3).
 * The weights are widened and paired to match by the generator (edgeq_conv2d.h), so each
 * SMLAD meets one weight word as it is: 2 SMLADs per 4 taps and channel, 4 channels a pass.
 *
 * A window row is read in groups of 4 taps (kernel_width rounded up to width4, the extra taps
 * meeting zero weights): up to 3 bytes past a row's last tap, never past the input's end.
 * A pixel whose window leaves the input (padding), or whose rounding would read past its
 * end, is first copied with the pad value into `scratch` ([kernel_height][width4] bytes).
 *
 * Traversal (a guarantee other code relies on: keep it): output pixels in raster order; each
 * pixel's window is read (or copied) before its O output bytes are written, and no input is
 * read for it afterwards.  The bytes read past a row's end may already hold this layer's
 * output (the plan may overlap them): they only meet zero weights.
 */
#include "edgeq_conv2d.h"
#include "edgeq_support.h"

/* The layer's constants, copied into the callee's locals (stores through int8_t pointers
 * may alias anything, so the loops never reread a struct they do not own). */
typedef struct {
    const int16_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;
    const int8_t *shift;
    int32_t channels, rows, width4, offset2, act_min, act_max;
} stage;

/* The fast requantization (the generator picks this kernel only where it is exact), clamped. */
static inline int32_t output_of(const stage *st, int32_t acc, int32_t o)
{
    const int32_t e = -st->shift[o];
    const int32_t y = edgeq_requantize_fast(acc, st->multiplier[o], e, (int32_t)((uint32_t)st->offset2 << (e - 1)));
    return y < st->act_min ? st->act_min : (y > st->act_max ? st->act_max : y);
}

#if EDGEQ_DSP
typedef const uint32_t *weight_ptr;
#else
typedef const int16_t *weight_ptr;
#endif

/* acc[0..3] += the 4 channels' dot products over n window rows of width4 taps, the first at
 * x, row_stride bytes apart; returns the weights after those rows. */
static EDGEQ_ALWAYS_INLINE weight_ptr rows_dot(weight_ptr w, const int8_t *x, int32_t row_stride, int32_t n,
                                               int32_t width4, int32_t acc[4])
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (; n > 0; --n, x += row_stride) {
        const int8_t *t = x;
        const int8_t *const end = x + width4;
        do {    /* 4 taps for 4 channels: 8 SMLADs with the next 8 weight words */
#if EDGEQ_DSP
            const uint32_t xv = edgeq_load32(t);
            const int32_t xe = edgeq_sxtb16(xv), xo = edgeq_sxtb16_ror8(xv);
            uint32_t we, wo;
            edgeq_load2_inc(&w, &we, &wo);
            a0 = edgeq_smlad((int32_t)we, xe, a0);
            a0 = edgeq_smlad((int32_t)wo, xo, a0);
            edgeq_load2_inc(&w, &we, &wo);
            a1 = edgeq_smlad((int32_t)we, xe, a1);
            a1 = edgeq_smlad((int32_t)wo, xo, a1);
            edgeq_load2_inc(&w, &we, &wo);
            a2 = edgeq_smlad((int32_t)we, xe, a2);
            a2 = edgeq_smlad((int32_t)wo, xo, a2);
            edgeq_load2_inc(&w, &we, &wo);
            a3 = edgeq_smlad((int32_t)we, xe, a3);
            a3 = edgeq_smlad((int32_t)wo, xo, a3);
#else
            const int32_t x0 = t[0], x1 = t[1], x2 = t[2], x3 = t[3];
            a0 += w[0] * x0 + w[1] * x2 + w[2] * x1 + w[3] * x3;
            a1 += w[4] * x0 + w[5] * x2 + w[6] * x1 + w[7] * x3;
            a2 += w[8] * x0 + w[9] * x2 + w[10] * x1 + w[11] * x3;
            a3 += w[12] * x0 + w[13] * x2 + w[14] * x1 + w[15] * x3;
            w += 16;
#endif
            t += 4;
        } while (t != end);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
    return w;
}

/* `count` output pixels of one output row, `step` input bytes apart (the stride): the window
 * rows of the first start at src, row_stride bytes apart.  Each pixel's O outputs are written
 * after its window is read. */
static EDGEQ_NOINLINE void pixels(const stage *stp, const int8_t *src, int32_t row_stride, int32_t count,
                                  int32_t step, int8_t *out)
{
    const stage st = *stp;
    const int32_t channels = st.channels;

    for (; count > 0; --count, src += step, out += channels) {
        weight_ptr w = (weight_ptr)(const void *)st.weights;
        int32_t o;
        for (o = 0; o < channels; o += 4) {
            const int32_t n = channels - o;
            int32_t acc[4];
            acc[0] = st.bias[o];
            acc[1] = n > 1 ? st.bias[o + 1] : 0;
            acc[2] = n > 2 ? st.bias[o + 2] : 0;
            acc[3] = n > 3 ? st.bias[o + 3] : 0;
            w = rows_dot(w, src, row_stride, st.rows, st.width4, acc);
            out[o] = (int8_t)output_of(&st, acc[0], o);
            if (n > 1) {
                out[o + 1] = (int8_t)output_of(&st, acc[1], o + 1);
            }
            if (n > 2) {
                out[o + 2] = (int8_t)output_of(&st, acc[2], o + 2);
            }
            if (n > 3) {
                out[o + 3] = (int8_t)output_of(&st, acc[3], o + 3);
            }
        }
    }
}

/* The window whose top-left tap is input (iy0, ix0), the pad value outside the input, as
 * kernel_height rows of width4 bytes at `win` (4-byte aligned). */
static EDGEQ_NOINLINE void copy_window(const edgeq_conv2d_c1_params *p, const int8_t *input, int32_t iy0,
                                       int32_t ix0, uint32_t pad4, int8_t *win)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t wd = g->input_width, kw = g->kernel_width;
    const int32_t w4 = (kw + 3) & ~3;
    const int32_t lo = ix0 < 0 ? -ix0 : 0;                  /* taps inside the input: [lo, hi) */
    const int32_t hi = wd - ix0 < kw ? wd - ix0 : kw;
    const int32_t size = g->input_height * wd;
    uint32_t *words = (uint32_t *)(void *)win;
    int32_t ky, kx;

    for (ky = 0; ky < g->kernel_height; ++ky, win += w4) {
        const int32_t iy = iy0 + ky;
        if (iy >= 0 && iy < g->input_height && lo == 0 && hi == kw && iy * wd + ix0 + w4 <= size) {
            const int8_t *row = input + iy * wd + ix0;      /* whole words, unaligned loads */
            for (kx = 0; kx < w4; kx += 4) {
                *words++ = edgeq_load32(row + kx);
            }
            continue;
        }
        for (kx = 0; kx < w4; kx += 4) {
            *words++ = pad4;
        }
        if (iy >= 0 && iy < g->input_height) {
            const int8_t *row = input + iy * wd;
            for (kx = lo; kx < hi; ++kx) {
                win[kx] = row[ix0 + kx];
            }
        }
    }
}

void edgeq_conv2d_c1_s8(const edgeq_conv2d_c1_params *p, const int8_t *input, int8_t *output,
                        int8_t *scratch)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t h = g->input_height, wd = g->input_width;
    const int32_t kh = g->kernel_height, kw = g->kernel_width;
    const int32_t ow = g->output_width, sw = g->stride_width;
    const int32_t w4 = (kw + 3) & ~3;
    const int32_t o = p->output_channels;
    const uint32_t pad4 = (uint32_t)(uint8_t)p->pad_value * 0x01010101u;
    int32_t oy, ox, in_lo, in_hi;
    stage st;

    st.weights = p->weights;
    st.bias = p->bias;
    st.multiplier = p->requant.multiplier;
    st.shift = p->requant.shift;
    st.channels = o;
    st.rows = kh;
    st.width4 = w4;
    st.offset2 = 2 * p->output_offset + 1;
    st.act_min = p->requant.act_min;
    st.act_max = p->requant.act_max;
    /* output columns [in_lo, in_hi) have windows inside the input's columns */
    in_lo = (g->pad_left + sw - 1) / sw;
    in_hi = (wd - kw + g->pad_left) / sw + 1;
    in_hi = wd < kw ? 0 : (in_hi < ow ? in_hi : ow);
    in_lo = in_lo < in_hi ? in_lo : in_hi;
    for (oy = 0; oy < g->output_height; ++oy, output += ow * o) {
        const int32_t iy0 = oy * g->stride_height - g->pad_top;
        int32_t run_hi = in_lo;
        if (iy0 >= 0 && iy0 + kh <= h) {
            /* rows inside; the rounding up to width4 may not read past the input's end:
             * pixel ox reads up to row_end + ox * sw (exclusive) */
            const int32_t row_end = (iy0 + kh - 1) * wd + w4 - g->pad_left;
            run_hi = in_hi;
            while (run_hi > in_lo && row_end + (run_hi - 1) * sw > h * wd) {
                --run_hi;
            }
        }
        for (ox = 0; ox < ow; ++ox) {
            const int32_t ix0 = ox * sw - g->pad_left;
            if (ox == in_lo && run_hi > in_lo) {
                pixels(&st, input + iy0 * wd + ix0, wd, run_hi - in_lo, sw, output + ox * o);
                ox = run_hi - 1;
                continue;
            }
            copy_window(p, input, iy0, ix0, pad4, scratch);
            pixels(&st, scratch, w4, 1, 0, output + ox * o);
        }
    }
}
