/* edgeq kernel: int8 strided slice (begin / end / step per dimension).  Safe in place over the
 * start of the input: output element k reads input addresses >= k only. */
#include "edgeq_slice.h"

void edgeq_slice_s8(const edgeq_slice_params *p, const int8_t *input, int8_t *output)
{
    const int32_t last = p->dims - 1;
    const int32_t inner = p->output_shape[last];
    const int32_t step = p->input_strides[last];
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t rows = 1;
    int32_t offset = p->input_start;
    int32_t d, r, i;

    for (d = 0; d < last; ++d) {
        rows *= p->output_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        const int8_t *x = input + offset;
        for (i = 0; i < inner; ++i) {
            output[i] = x[i * step];
        }
        output += inner;
        /* next row: advance the multi-index of the outer dimensions */
        for (d = last - 1; d >= 0; --d) {
            offset += p->input_strides[d];
            if (++index[d] < p->output_shape[d]) {
                break;
            }
            offset -= p->input_strides[d] * p->output_shape[d];
            index[d] = 0;
        }
    }
}
