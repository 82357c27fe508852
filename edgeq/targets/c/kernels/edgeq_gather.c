/* edgeq kernel: int8 gather of slices along one axis at constant indices. */
#include "edgeq_gather.h"

void edgeq_gather_axis_s8(const edgeq_gather_params *p, const int8_t *input,
                          int8_t *EDGEQ_RESTRICT output)
{
    int32_t o, j, i;

    for (o = 0; o < p->outer; ++o) {
        const int8_t *block = input + o * p->depth * p->inner;
        for (j = 0; j < p->count; ++j) {
            const int8_t *slice = block + p->indices[j] * p->inner;
            for (i = 0; i < p->inner; ++i) {
                output[i] = slice[i];
            }
            output += p->inner;
        }
    }
}
