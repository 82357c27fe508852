/* edgeq kernel: int8 strided slice (begin / end / step per dimension).  Safe in place over the
 * start of the input: output element k reads input addresses >= k only. */
#include "edgeq_slice.h"
#include "edgeq_support.h"

void edgeq_slice_s8(const edgeq_slice_params *p, const int8_t *input, int8_t *output)
{
    edgeq_gather_s8(p->dims, p->output_shape, p->input_strides, p->input_start, input, output);
}
