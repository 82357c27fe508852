/* edgeq kernel: int8 transpose (any permutation of up to EDGEQ_MAX_DIMS dimensions). */
#include "edgeq_transpose.h"
#include "edgeq_support.h"

void edgeq_transpose_s8(const edgeq_transpose_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output)
{
    edgeq_gather_s8(p->dims, p->output_shape, p->input_strides, 0, input, output);
}
