/*
 * edgeq integer kernels: support functions of the 16x8 kernels (int16 activations, int8
 * weights, int64 biases and accumulators), as TFLite's 16x8 reference kernels compute.
 */
#ifndef EDGEQ_SUPPORT_S16_H
#define EDGEQ_SUPPORT_S16_H

#include "edgeq_support.h"

/* x * multiplier * 2^(shift - 31) for an int64 accumulator, as TFLite's 16x8 kernels compute it
 * (MultiplyByQuantizedMultiplier(int64_t, int32_t, int)): the Q31 multiplier is first rounded
 * to Q15, then one rounding shift right by 15 - shift, ties toward +infinity; the result is
 * cast to int32 (wrapping).  Mirrors intmath.multiply_by_quantized_multiplier_int64.
 * x in [-2^47, 2^47), multiplier in [0, 2^31), shift <= 14 (the emitter checks it). */
static inline int32_t edgeq_multiply_by_quantized_multiplier_int64(int64_t x, int32_t multiplier,
                                                                   int32_t shift)
{
    const int32_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    return (int32_t)((x * reduced + ((int64_t)1 << (total_shift - 1))) >> total_shift);
}

/* int64 accumulator -> int16: requantize and clamp to [act_min, act_max] (zero point 0). */
static inline int16_t edgeq_requantize_s16(int64_t acc, int32_t multiplier, int32_t shift,
                                           int32_t act_min, int32_t act_max)
{
    int32_t out = edgeq_multiply_by_quantized_multiplier_int64(acc, multiplier, shift);
    out = out < act_min ? act_min : out;
    out = out > act_max ? act_max : out;
    return (int16_t)out;
}

/* sum_i w[i] * x[i], i < n, in 64 bits (each product fits in 32). */
static inline int64_t edgeq_dot_s16(const int16_t *x, const int8_t *w, int32_t n)
{
    int64_t acc = 0;
    int32_t i;
    for (i = 0; i < n; ++i) {
        acc += (int32_t)w[i] * (int32_t)x[i];
    }
    return acc;
}

/* acc[k] += sum_i w[k * w_stride + i] * x[i] for k = 0..3, i < n: four output channels share
 * each input load. */
static inline void edgeq_dot4_s16(const int16_t *x, const int8_t *w, int32_t w_stride, int32_t n,
                                  int64_t acc[4])
{
    const int8_t *w0 = w;
    const int8_t *w1 = w0 + w_stride;
    const int8_t *w2 = w1 + w_stride;
    const int8_t *w3 = w2 + w_stride;
    int64_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t xv = x[i];
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

/* edgeq_gather_s8 on int16 values (transpose). */
static inline void edgeq_gather_s16(int32_t dims, const int32_t *shape, const int32_t *strides,
                                    int32_t start, const int16_t *input, int16_t *output)
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
        const int16_t *x = input + offset;
        for (i = 0; i < inner; ++i) {
            output[i] = x[i * step];
        }
        output += inner;
        offset = edgeq_next_index(last - 1, shape, strides, index, offset);
    }
}

#endif /* EDGEQ_SUPPORT_S16_H */
