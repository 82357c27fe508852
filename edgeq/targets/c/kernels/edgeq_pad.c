/* edgeq kernel: int8 constant padding of up to EDGEQ_MAX_DIMS dimensions. */
#include "edgeq_pad.h"
#include "edgeq_support.h"

void edgeq_pad_s8(const edgeq_pad_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output)
{
    const int32_t last = p->dims - 1;
    const int32_t inner = p->input_shape[last];
    const int32_t step = p->output_strides[last];
    int32_t index[EDGEQ_MAX_DIMS] = {0};
    int32_t rows = 1;
    int32_t offset = p->output_start;
    int32_t d, r, i;

    for (i = 0; i < p->output_size; ++i) {
        output[i] = (int8_t)p->pad_value;
    }
    for (d = 0; d < last; ++d) {
        rows *= p->input_shape[d];
    }
    for (r = 0; r < rows; ++r) {
        int8_t *y = output + offset;
        for (i = 0; i < inner; ++i) {
            y[i * step] = input[i];
        }
        input += inner;
        /* next input row: advance the multi-index of the outer dimensions */
        offset = edgeq_next_index(last - 1, p->input_shape, p->output_strides, index, offset);
    }
}
