/* edgeq kernels: fully connected layers, int8 and 16x8. */
#ifndef EDGEQ_FULLY_CONNECTED_H
#define EDGEQ_FULLY_CONNECTED_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[r][o] = requantize(sum_i w[o][i] * (x[r][i] + input_offset) + bias[o]) for each row r:
 * a matrix product per row (edgeq_matmul_s8: input offset folded into the biases, weights
 * packed).  A row's input is read again between the writes of its outputs (two at a time). */
typedef struct {
    int32_t rows;
    edgeq_matmul_s8 matmul;          /* depth = input features, channels = output features */
} edgeq_fully_connected_params;

/* Traversal contract (edgeq's memory plan overlaps output and input on it; edgeq/ops/traversal.py):
 * rows in order; no read of a row after a write of a later row.  Hence no restrict on the
 * pointers: the output may overlap the input rows it has consumed. */
void edgeq_fully_connected_s8(const edgeq_fully_connected_params *p, const int8_t *input,
                              int8_t *output);

/* 16x8 fully connected: y[r][o] = requantize_s16(bias[o] + sum_i w[o][i] * x[r][i]), int16
 * input and output, int64 biases and accumulators. */
typedef struct {
    edgeq_fc_shape shape;
    const int8_t *weights;           /* [output_features][input_features] */
    const int64_t *bias;             /* [output_features] */
    edgeq_channel_requant requant;
} edgeq_fully_connected_s16_params;

void edgeq_fully_connected_s16(const edgeq_fully_connected_s16_params *p, const int16_t *input,
                               int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_FULLY_CONNECTED_H */
