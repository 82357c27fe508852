/* edgeq kernels: matrix product of two activations with broadcast batch dimensions, int8 and
 * 16x8. */
#ifndef EDGEQ_BATCH_MATMUL_H
#define EDGEQ_BATCH_MATMUL_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite BATCH_MATMUL: for each batch index (batch_shape, each operand's element strides, 0
 * where it is broadcast) the rows x cols product of input1 [rows][depth] and input2
 * [depth][cols], each matrix read through its own element strides (so a transposed or NHWC
 * operand needs no copy): sum_k (x1 + input1_offset) * (x2 + input2_offset) requantized by
 * multiplier / shift (input1 scale * input2 scale / output scale), plus output_offset,
 * saturated.  int8: int32 accumulators; 16x8 (int16 operands and output, zero points 0): int64
 * accumulators and the 16x8 requantization. */
typedef struct {
    int32_t batch_dims;
    int32_t batch_shape[EDGEQ_MAX_DIMS];
    int32_t input1_batch_strides[EDGEQ_MAX_DIMS];
    int32_t input2_batch_strides[EDGEQ_MAX_DIMS];
    int32_t output_batch_strides[EDGEQ_MAX_DIMS];
    int32_t rows, cols, depth;
    int32_t input1_row_stride, input1_depth_stride;
    int32_t input2_depth_stride, input2_col_stride;
    int32_t output_row_stride, output_col_stride;
    int32_t input1_offset, input2_offset;
    int32_t output_offset;
    int32_t multiplier, shift;
} edgeq_batch_matmul_params;

void edgeq_batch_matmul_s8(const edgeq_batch_matmul_params *p, const int8_t *input1,
                           const int8_t *input2, int8_t *EDGEQ_RESTRICT output);

void edgeq_batch_matmul_s16(const edgeq_batch_matmul_params *p, const int16_t *input1,
                            const int16_t *input2, int16_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_BATCH_MATMUL_H */
