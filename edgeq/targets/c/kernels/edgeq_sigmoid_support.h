/*
 * edgeq integer kernels: the table steps of TFLite's int16 LOGISTIC and TANH (mirrors
 * edgeq/intmath_activations.py: _int16_lut_input, logistic_int16, tanh_int16).
 */
#ifndef EDGEQ_SIGMOID_SUPPORT_H
#define EDGEQ_SIGMOID_SUPPORT_H

#include "edgeq_sigmoid.h"

/* The last table entry an interpolation may start from (it reads the next one too). */
#define EDGEQ_SIGMOID_TABLE_LAST_START 254
/* |v| >> step at or past this index saturates */
#define EDGEQ_SIGMOID_TABLE_END 255

/* The input in the table's units: (x * multiplier + rounding) >> left_shift, in int64 (the
 * product plus the rounding term can reach 2^31). */
static inline int32_t edgeq_sigmoid_table_input(const edgeq_sigmoid_params *p, int32_t x)
{
    int64_t multiplier = p->input_multiplier;
    int32_t left_shift = p->input_left_shift;
    int64_t rounding;
    if (multiplier == 0) {                /* power-of-two input scale */
        multiplier = (int64_t)3 << left_shift;
        left_shift = 0;
    }
    rounding = left_shift > 0 ? (int64_t)1 << (left_shift - 1) : 0;
    return (int32_t)(((int64_t)x * multiplier + rounding) >> left_shift);
}

/* table[|v| >> step] interpolated by the low `step` bits of |v|, in 0.16 << step fixed point;
 * `saturated` past the table's end. */
static inline int32_t edgeq_sigmoid_interpolate(const uint16_t *table, int32_t magnitude,
                                                int32_t step, int32_t saturated)
{
    const int32_t index = magnitude >> step;
    const int32_t fraction = magnitude & ((1 << step) - 1);
    int32_t start;
    if (index >= EDGEQ_SIGMOID_TABLE_END) {
        return saturated;
    }
    start = index < EDGEQ_SIGMOID_TABLE_LAST_START ? index : EDGEQ_SIGMOID_TABLE_LAST_START;
    return ((int32_t)table[start] << step)
           + fraction * ((int32_t)table[start + 1] - (int32_t)table[start]);
}

#endif /* EDGEQ_SIGMOID_SUPPORT_H */
