/* edgeq kernel: int8 maximum over any axes (TFLite REDUCE_MAX). */
#include "edgeq_reduce_max.h"
#include "edgeq_support.h"

void edgeq_reduce_max_s8(const edgeq_reduce_max_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output)
{
    const edgeq_reduce_axes *a = &p->axes;
    const int32_t last = a->reduce_dims - 1;
    const int32_t inner = a->reduce_shape[last];
    const int32_t step = a->reduce_strides[last];
    int32_t out_index[EDGEQ_MAX_DIMS] = {0};
    int32_t outputs, rows;
    int32_t base = 0;
    int32_t k, r, i;

    edgeq_reduce_counts(a, &outputs, &rows);
    for (k = 0; k < outputs; ++k) {
        int32_t red_index[EDGEQ_MAX_DIMS] = {0};
        int32_t offset = base;
        int8_t best = EDGEQ_INT8_MIN;
        for (r = 0; r < rows; ++r) {
            const int8_t *x = input + offset;
            for (i = 0; i < inner; ++i) {
                best = x[i * step] > best ? x[i * step] : best;
            }
            /* next row of the reduced dimensions */
            offset = edgeq_next_index(last - 1, a->reduce_shape, a->reduce_strides, red_index, offset);
        }
        output[k] = best;
        /* next output: advance the multi-index of the kept dimensions */
        base = edgeq_next_index(a->output_dims - 1, a->output_shape, a->output_strides, out_index, base);
    }
}
