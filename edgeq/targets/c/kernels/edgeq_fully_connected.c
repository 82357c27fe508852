/* edgeq kernel: int8 fully connected layer, weights [out][in]. */
#include "edgeq_kernels.h"

void edgeq_fully_connected_s8(const edgeq_fully_connected_params *p, const int8_t *input,
                              int8_t *EDGEQ_RESTRICT output)
{
    const edgeq_requant_s8 rq = {p->bias, p->multiplier, p->shift, p->output_offset, p->act_min,
                                 p->act_max};
    int32_t r;

    for (r = 0; r < p->rows; ++r) {
        edgeq_matrix_row_s8(input + r * p->input_features, p->weights, p->input_features,
                            p->output_features, p->input_offset, &rq,
                            output + r * p->output_features);
    }
}
