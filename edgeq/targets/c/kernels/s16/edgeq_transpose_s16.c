/* edgeq kernel: int16 transpose (any permutation of up to EDGEQ_MAX_DIMS dimensions). */
#include "edgeq_transpose.h"
#include "edgeq_support_s16.h"

void edgeq_transpose_s16(const edgeq_transpose_params *p, const int16_t *input,
                         int16_t *EDGEQ_RESTRICT output)
{
    edgeq_gather_s16(p->dims, p->output_shape, p->input_strides, 0, input, output);
}
