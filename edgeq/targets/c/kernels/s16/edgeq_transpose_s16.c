/* edgeq kernel: int16 transpose (any permutation of up to EDGEQ_MAX_DIMS dimensions). */
#include "edgeq_transpose.h"

void edgeq_transpose_s16(const edgeq_transpose_params *p, const int16_t *input,
                         int16_t *EDGEQ_RESTRICT output)
{
    int32_t index[EDGEQ_MAX_DIMS];
    int32_t total = 1;
    int32_t offset = 0;
    int32_t d, i;

    for (d = 0; d < p->dims; ++d) {
        index[d] = 0;
        total *= p->output_shape[d];
    }
    for (i = 0; i < total; ++i) {
        output[i] = input[offset];
        /* advance the output multi-index (last dimension fastest) */
        for (d = p->dims - 1; d >= 0; --d) {
            offset += p->input_strides[d];
            if (++index[d] < p->output_shape[d]) {
                break;
            }
            offset -= p->input_strides[d] * p->output_shape[d];
            index[d] = 0;
        }
    }
}
