/* edgeq kernel: int16 mean over any axes (TFLite's int16 MEAN, zero points 0: the int32 sum,
 * requantized with the multiplier rescaled by 1 / n, saturated to int16).  Also the 16x8 sum. */
#include "edgeq_mean.h"
#include "edgeq_support.h"

void edgeq_mean_s16(const edgeq_mean_params *p, const int16_t *input, int16_t *EDGEQ_RESTRICT output)
{
    const edgeq_reduce_axes *a = &p->axes;
    const int32_t last = a->reduce_dims - 1;
    const int32_t inner = a->reduce_shape[last];
    const int32_t step = a->reduce_strides[last];
    const int32_t offset_sum = p->input_offset * p->num_elements;
    int32_t out_index[EDGEQ_MAX_DIMS] = {0};
    int32_t outputs, rows;
    int32_t base = 0;
    int32_t k, r, i;

    edgeq_reduce_counts(a, &outputs, &rows);
    for (k = 0; k < outputs; ++k) {
        int32_t red_index[EDGEQ_MAX_DIMS] = {0};
        int32_t offset = base;
        int32_t sum = 0;             /* at most 2^15 * num_elements: the lowering keeps it in int32 */
        int32_t out;
        for (r = 0; r < rows; ++r) {
            const int16_t *x = input + offset;
            for (i = 0; i < inner; ++i) {
                sum += x[i * step];
            }
            /* next row of the reduced dimensions */
            offset = edgeq_next_index(last - 1, a->reduce_shape, a->reduce_strides, red_index, offset);
        }
        out = edgeq_multiply_by_quantized_multiplier(sum + offset_sum, p->multiplier, p->shift)
              + p->output_offset;
        out = out < EDGEQ_INT16_MIN ? EDGEQ_INT16_MIN : out;
        output[k] = (int16_t)(out > EDGEQ_INT16_MAX ? EDGEQ_INT16_MAX : out);
        /* next output: advance the multi-index of the kept dimensions */
        base = edgeq_next_index(a->output_dims - 1, a->output_shape, a->output_strides, out_index, base);
    }
}
