/* edgeq kernel: one input of an int8 concatenation, rescaled to the output quantization. */
#include "edgeq_concat.h"
#include "edgeq_support.h"

void edgeq_concat_s8(const edgeq_concat_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output)
{
    int32_t r, i;

    output += p->output_start;
    for (r = 0; r < p->outer; ++r) {
        if (p->rescale.rescale) {
            for (i = 0; i < p->input_row; ++i) {
                output[i] = (int8_t)edgeq_rescale(&p->rescale, input[i]);
            }
        } else {
            for (i = 0; i < p->input_row; ++i) {
                output[i] = input[i];
            }
        }
        input += p->input_row;
        output += p->output_row;
    }
}
