/* edgeq kernel: argmax of int8 values along one axis; int32 indices (the first on ties), each
 * stored as 4 little-endian bytes. */
#include "edgeq_argmax.h"

void edgeq_argmax_s8(const edgeq_argmax_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output)
{
    int32_t o, i, d;

    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inner; ++i) {
            const int8_t *x = input + o * p->depth * p->inner + i;
            int32_t best = 0;
            int32_t max = x[0];
            uint32_t index;
            for (d = 1; d < p->depth; ++d) {
                if (x[d * p->inner] > max) {
                    max = x[d * p->inner];
                    best = d;
                }
            }
            index = (uint32_t)best;
            output[0] = (int8_t)(index & 0xffu);
            output[1] = (int8_t)((index >> 8) & 0xffu);
            output[2] = (int8_t)((index >> 16) & 0xffu);
            output[3] = (int8_t)((index >> 24) & 0xffu);
            output += 4;
        }
    }
}
