/*
 * edgeq integer kernels: support functions every kernel may use.  The arithmetic mirrors
 * edgeq/intmath.py bit for bit: TFLite's quantized multiplier (Q31 significand + power-of-two
 * shift) with gemmlowp's double rounding (saturating rounding doubling high multiply, then
 * rounding divide by a power of two); dot products of the convolution and fully connected
 * kernels; stepping through windows, multi-indices and broadcasts.  The 16x8 kernels' int64
 * requantization is in edgeq_support_s16.h.
 * Everything here is static inline: a kernel file includes what it uses.
 */
#ifndef EDGEQ_SUPPORT_H
#define EDGEQ_SUPPORT_H

#include "edgeq_types.h"
#include "edgeq_dsp.h"

/* ---------------------------------------------------------------- fixed-point helpers */

/* (a * b * 2) >> 32, rounded to nearest (ties toward +infinity); only INT32_MIN * INT32_MIN
 * saturates (to INT32_MAX).  gemmlowp SaturatingRoundingDoublingHighMul, which computes
 * trunc((a*b + (a*b >= 0 ? 2^30 : 1 - 2^30)) / 2^31): for every a*b that equals
 * floor((a*b + 2^30) / 2^31), i.e. an add and an arithmetic shift. */
static inline int32_t edgeq_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* x / 2^exponent rounded to nearest, ties away from zero; exponent in [0, 31].
 * gemmlowp RoundingDivideByPOT. */
static inline int32_t edgeq_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * multiplier * 2^(shift - 31) with TFLite's double rounding.  A positive shift shifts x
 * left first (wrapping like int32 arithmetic), a negative one divides at the end.
 * multiplier is a quantize_multiplier() significand, in [0, 2^31): never INT32_MIN, so the
 * doubling high multiply cannot saturate and needs no check. */
static inline int32_t edgeq_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                             int32_t shift)
{
    int32_t right_shift = -shift;
    int32_t high;
    if (shift > 0) {
        x = (int32_t)((uint32_t)x << shift);
        right_shift = 0;
    }
    high = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
    return edgeq_rounding_divide_by_pot(high, right_shift);
}

/* Accumulator -> int8: requantize, add the output zero point, clamp to [act_min, act_max]. */
static inline int8_t edgeq_requantize(int32_t acc, int32_t multiplier, int32_t shift,
                                      int32_t output_offset, int32_t act_min, int32_t act_max)
{
    /* clamp(r + offset, lo, hi) == clamp(r, lo - offset, hi - offset) + offset, without the
     * int32 overflow r + offset could have */
    const int32_t lo = act_min - output_offset;
    const int32_t hi = act_max - output_offset;
    int32_t out = edgeq_multiply_by_quantized_multiplier(acc, multiplier, shift);
    out = out < lo ? lo : out;
    out = out > hi ? hi : out;
    return (int8_t)(out + output_offset);
}

/* edgeq_multiply_by_quantized_multiplier(acc, multiplier, -right_shift) + output_offset in
 * four operations, for right_shift in [1, 21] and |acc| < 2^30 (edgeq's generator checks both
 * from the weights and biases before it sets fast_requant).  `rounding` is
 * 2^(right_shift - 1) + output_offset * 2^right_shift = (2 output_offset + 1) << (right_shift - 1).
 * The doubling high multiply (acc * m + 2^30) >> 31 equals (2 acc * m + 2^31) >> 32, one
 * SMMLAR with `rounding` as its addend; then (h + 2^(e-1) - (h < 0)) >> e is the division
 * by 2^e with ties away from zero, and acc < 0 may stand for h < 0 (when they differ h is 0
 * and both give 0). */
static inline int32_t edgeq_requantize_fast(int32_t acc, int32_t multiplier, int32_t right_shift,
                                            int32_t rounding)
{
#if EDGEQ_DSP
    const int32_t y = edgeq_smmlar(acc * 2, multiplier, rounding);
#else
    const int32_t y = (int32_t)(((int64_t)acc * multiplier + ((int64_t)1 << 30)) >> 31) + rounding;
#endif
    return (y - (int32_t)((uint32_t)acc >> 31)) >> right_shift;
}

/* sum_i w[i] * (x[i] + input_offset), i < n */
static inline int32_t edgeq_dot_s8(const int8_t *x, const int8_t *w, int32_t n,
                                   int32_t input_offset)
{
    int32_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + input_offset);
    }
    return acc;
}

/* acc[k] += sum_i w[k * w_stride + i] * (x[i] + input_offset) for k = 0..3, i < n: four
 * output channels share each input load. */
static inline void edgeq_dot4_s8(const int8_t *x, const int8_t *w, int32_t w_stride, int32_t n,
                                 int32_t input_offset, int32_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w0 + w_stride;
    const int8_t *w2 = w1 + w_stride;
    const int8_t *w3 = w2 + w_stride;
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t xv = (int32_t)x[i] + input_offset;
        a0 += (int32_t)w0[i] * xv;
        a1 += (int32_t)w1[i] * xv;
        a2 += (int32_t)w2[i] * xv;
        a3 += (int32_t)w3[i] * xv;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Per output channel constants of a conv / fully connected layer, as the kernels read them. */
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int8_t *shift;
    int32_t output_offset, act_min, act_max;
} edgeq_requant_s8;

/* out[k] = requantize(bias[o + k] + sum_i w[k * w_stride + i] * (x[i] + input_offset)) for
 * k = 0..3: four output channels of one input row, sharing each input load.  `w` points at
 * channel o's weights and `rq` at channel o's constants. */
static inline void edgeq_row4_s8(const int8_t *x, const int8_t *w, int32_t w_stride, int32_t n,
                                 int32_t input_offset, const edgeq_requant_s8 *rq, int32_t o,
                                 int8_t *EDGEQ_RESTRICT out)
{
    const int8_t *w0 = w;
    const int8_t *w1 = w0 + w_stride;
    const int8_t *w2 = w1 + w_stride;
    const int8_t *w3 = w2 + w_stride;
    int32_t a0 = rq->bias[o], a1 = rq->bias[o + 1], a2 = rq->bias[o + 2], a3 = rq->bias[o + 3];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t xv = (int32_t)x[i] + input_offset;
        a0 += (int32_t)w0[i] * xv;
        a1 += (int32_t)w1[i] * xv;
        a2 += (int32_t)w2[i] * xv;
        a3 += (int32_t)w3[i] * xv;
    }
    out[0] = edgeq_requantize(a0, rq->multiplier[o], rq->shift[o], rq->output_offset,
                              rq->act_min, rq->act_max);
    out[1] = edgeq_requantize(a1, rq->multiplier[o + 1], rq->shift[o + 1], rq->output_offset,
                              rq->act_min, rq->act_max);
    out[2] = edgeq_requantize(a2, rq->multiplier[o + 2], rq->shift[o + 2], rq->output_offset,
                              rq->act_min, rq->act_max);
    out[3] = edgeq_requantize(a3, rq->multiplier[o + 3], rq->shift[o + 3], rq->output_offset,
                              rq->act_min, rq->act_max);
}

/* One row of a matrix product: out[o] = requantize(bias[o] + sum_i w[o][i] * (x[i] +
 * input_offset)) for o < out_n (fully connected layers and 1x1 convolutions). */
static inline void edgeq_matrix_row_s8(const int8_t *x, const int8_t *weights, int32_t n,
                                       int32_t out_n, int32_t input_offset,
                                       const edgeq_requant_s8 *rq, int8_t *EDGEQ_RESTRICT out)
{
    int32_t o = 0;
    for (; o + 4 <= out_n; o += 4) {
        edgeq_row4_s8(x, weights + o * n, n, n, input_offset, rq, o, out + o);
    }
    for (; o < out_n; ++o) {
        out[o] = edgeq_requantize(rq->bias[o] + edgeq_dot_s8(x, weights + o * n, n, input_offset),
                                  rq->multiplier[o], rq->shift[o], rq->output_offset,
                                  rq->act_min, rq->act_max);
    }
}

/* ---------------------------------------------------------------- requantization */

/* edgeq_requantize() of an int8 value to another quantization (edgeq_rescale_params). */
static inline int32_t edgeq_rescale(const edgeq_rescale_params *r, int32_t x)
{
    if (!r->rescale) {
        return x;
    }
    return edgeq_requantize(x + r->input_offset, r->multiplier, r->shift, r->output_offset,
                            EDGEQ_INT8_MIN, EDGEQ_INT8_MAX);
}

/* ---------------------------------------------------------------- windows */

/* First and one-past-last kernel tap (of `kernel` taps `dilation` apart, the first at input
 * index `start`) whose input row/column lies inside [0, size). */
static inline void edgeq_valid_taps(int32_t start, int32_t dilation, int32_t kernel,
                                    int32_t size, int32_t *first, int32_t *end)
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

/* Output row oy of a convolution: returns the input row of its first tap (before clipping)
 * and sets [*first, *end) to the kernel rows inside the input. */
static inline int32_t edgeq_window_rows(const edgeq_conv_geometry *g, int32_t oy, int32_t *first,
                                        int32_t *end)
{
    const int32_t in_y0 = oy * g->stride_height - g->pad_top;
    edgeq_valid_taps(in_y0, g->dilation_height, g->kernel_height, g->input_height, first, end);
    return in_y0;
}

/* The same for output column ox: the input column of its first tap and the valid kernel
 * columns. */
static inline int32_t edgeq_window_cols(const edgeq_conv_geometry *g, int32_t ox, int32_t *first,
                                        int32_t *end)
{
    const int32_t in_x0 = ox * g->stride_width - g->pad_left;
    edgeq_valid_taps(in_x0, g->dilation_width, g->kernel_width, g->input_width, first, end);
    return in_x0;
}

/* ---------------------------------------------------------------- multi-indices */

/* One step of the multi-index `index` over `shape`, dimension d fastest: index[d] advances,
 * carrying into the dimensions before it.  Returns `offset` moved by the matching element
 * strides. */
static inline int32_t edgeq_next_index(int32_t d, const int32_t *shape, const int32_t *strides,
                                       int32_t *index, int32_t offset)
{
    for (; d >= 0; --d) {
        offset += strides[d];
        if (++index[d] < shape[d]) {
            break;
        }
        offset -= strides[d] * shape[d];
        index[d] = 0;
    }
    return offset;
}

/* The number of outputs of a reduction and of rows (of its innermost reduced dimension)
 * each output reduces. */
static inline void edgeq_reduce_counts(const edgeq_reduce_axes *a, int32_t *outputs, int32_t *rows)
{
    int32_t d;
    *outputs = 1;
    *rows = 1;
    for (d = 0; d < a->output_dims; ++d) {
        *outputs *= a->output_shape[d];
    }
    for (d = 0; d < a->reduce_dims - 1; ++d) {
        *rows *= a->reduce_shape[d];
    }
}

/* output[k] = input[start + sum_d i_d * strides[d]] for the multi-indices (i_0, i_1, ...) of
 * `shape` in row-major order, the last dimension innermost: transpose and strided slice. */
static inline void edgeq_gather_s8(int32_t dims, const int32_t *shape, const int32_t *strides,
                                   int32_t start, const int8_t *input, int8_t *output)
{
    const int32_t last = dims - 1;
    const int32_t inner = shape[last];
    const int32_t step = strides[last];
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t rows = 1;
    int32_t offset = start;
    int32_t d, r, i;

    for (d = 0; d < last; ++d) {
        rows *= shape[d];
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + offset;
        for (i = 0; i < inner; ++i) {
            output[i] = x[i * step];
        }
        output += inner;
        offset = edgeq_next_index(last - 1, shape, strides, index, offset);
    }
}

/* A walk over the output of a broadcasting op one row (of its last dimension) at a time:
 * the row's length, each input's stride along it, and where the current row starts. */
typedef struct {
    int32_t rows;                    /* rows of the last dimension */
    int32_t inner;                   /* values a row */
    int32_t stride1, stride2;        /* each input's element stride along a row */
    int32_t offset1, offset2;        /* each input's offset at the start of the current row */
    int32_t index[EDGEQ_MAX_DIMS];   /* multi-index of the current row (outer dimensions) */
} edgeq_broadcast_walk;

/* The walk at the first row. */
static inline void edgeq_broadcast_start(const edgeq_broadcast_shape *b, edgeq_broadcast_walk *w)
{
    const int32_t last = b->dims - 1;
    int32_t d;
    w->rows = 1;
    for (d = 0; d < last; ++d) {
        w->rows *= b->output_shape[d];
        w->index[d] = 0;
    }
    w->inner = b->output_shape[last];
    w->stride1 = b->input1_strides[last];
    w->stride2 = b->input2_strides[last];
    w->offset1 = 0;
    w->offset2 = 0;
}

/* Advances the multi-index of the outer dimensions (all but the last) to the next row and the
 * two input offsets with it. */
static inline void edgeq_broadcast_next_row(const edgeq_broadcast_shape *b, edgeq_broadcast_walk *w)
{
    int32_t d;
    for (d = b->dims - 2; d >= 0; --d) {
        w->offset1 += b->input1_strides[d];
        w->offset2 += b->input2_strides[d];
        if (++w->index[d] < b->output_shape[d]) {
            return;
        }
        w->offset1 -= b->input1_strides[d] * b->output_shape[d];
        w->offset2 -= b->input2_strides[d] * b->output_shape[d];
        w->index[d] = 0;
    }
}

#endif /* EDGEQ_SUPPORT_H */
