/* edgeq kernel: int8 batched matrix product of two activations (TFLite BATCH_MATMUL: int32
 * accumulators, one requantization). */
#include "edgeq_batch_matmul.h"
#include "edgeq_support.h"

void edgeq_batch_matmul_s8(const edgeq_batch_matmul_params *p, const int8_t *input1,
                           const int8_t *input2, int8_t *EDGEQ_RESTRICT output)
{
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t batches = 1;
    int32_t offset1 = 0, offset2 = 0, offset_out = 0;
    int32_t b, d, r, c, k;

    for (d = 0; d < p->batch_dims; ++d) {
        batches *= p->batch_shape[d];
    }
    for (b = 0; b < batches; ++b) {
        for (r = 0; r < p->rows; ++r) {
            const int8_t *row = input1 + offset1 + r * p->input1_row_stride;
            int8_t *out = output + offset_out + r * p->output_row_stride;
            for (c = 0; c < p->cols; ++c) {
                const int8_t *col = input2 + offset2 + c * p->input2_col_stride;
                int32_t acc = 0;
                for (k = 0; k < p->depth; ++k) {
                    acc += ((int32_t)row[k * p->input1_depth_stride] + p->input1_offset)
                           * ((int32_t)col[k * p->input2_depth_stride] + p->input2_offset);
                }
                out[c * p->output_col_stride] = edgeq_requantize(acc, p->multiplier, p->shift,
                                                                 p->output_offset, EDGEQ_INT8_MIN,
                                                                 EDGEQ_INT8_MAX);
            }
        }
        /* next batch: advance the batch multi-index and the three offsets with it */
        for (d = p->batch_dims - 1; d >= 0; --d) {
            offset1 += p->input1_batch_strides[d];
            offset2 += p->input2_batch_strides[d];
            offset_out += p->output_batch_strides[d];
            if (++index[d] < p->batch_shape[d]) {
                break;
            }
            offset1 -= p->input1_batch_strides[d] * p->batch_shape[d];
            offset2 -= p->input2_batch_strides[d] * p->batch_shape[d];
            offset_out -= p->output_batch_strides[d] * p->batch_shape[d];
            index[d] = 0;
        }
    }
}
