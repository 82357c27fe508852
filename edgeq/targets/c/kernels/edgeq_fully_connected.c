/* edgeq kernel: int8 fully connected layer, weights [out][in]. */
#include "edgeq_fully_connected.h"
#include "edgeq_support.h"

void edgeq_fully_connected_s8(const edgeq_fully_connected_params *params, const int8_t *input,
                              int8_t *output)
{
    /* a local copy: the output may overlap the input (no restrict), so stores through it
     * could otherwise change the parameters as far as the compiler knows */
    const edgeq_fully_connected_params local = *params;
    const edgeq_fully_connected_params *const p = &local;
    const edgeq_channel_requant *requant = &p->requant;
    const edgeq_fc_shape *shape = &p->shape;
    const edgeq_requant_s8 rq = {p->bias, requant->multiplier, requant->shift, p->output_offset,
                                 requant->act_min, requant->act_max};
    int32_t r;

    for (r = 0; r < shape->rows; ++r) {
        edgeq_matrix_row_s8(input + r * shape->input_features, p->weights, shape->input_features,
                            shape->output_features, p->input_offset, &rq,
                            output + r * shape->output_features);
    }
}
