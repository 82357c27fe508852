/* edgeq kernel: int16 batched matrix product of two activations (TFLite's 16x8 BATCH_MATMUL:
 * zero points 0, int64 accumulators, the 16x8 requantization). */
#include "edgeq_batch_matmul.h"
#include "edgeq_support_s16.h"

void edgeq_batch_matmul_s16(const edgeq_batch_matmul_params *p, const int16_t *input1,
                            const int16_t *input2, int16_t *EDGEQ_RESTRICT output)
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
            const int16_t *row = input1 + offset1 + r * p->input1_row_stride;
            int16_t *out = output + offset_out + r * p->output_row_stride;
            for (c = 0; c < p->cols; ++c) {
                const int16_t *col = input2 + offset2 + c * p->input2_col_stride;
                int64_t acc = 0;
                for (k = 0; k < p->depth; ++k) {
                    /* each product of two int16 values fits in int32 */
                    acc += (int32_t)row[k * p->input1_depth_stride]
                           * (int32_t)col[k * p->input2_depth_stride];
                }
                out[c * p->output_col_stride] = edgeq_requantize_s16(acc, p->multiplier, p->shift,
                                                                     EDGEQ_INT16_MIN, EDGEQ_INT16_MAX);
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
