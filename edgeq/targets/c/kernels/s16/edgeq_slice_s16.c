/* edgeq kernel: int16 strided slice (begin / end / step per dimension).  Safe in place over the
 * start of the input: output element k reads input elements >= k only. */
#include "edgeq_slice.h"
#include "edgeq_support_s16.h"

void edgeq_slice_s16(const edgeq_slice_params *p, const int16_t *input, int16_t *output)
{
    edgeq_gather_s16(p->dims, p->output_shape, p->input_strides, p->input_start, input, output);
}
