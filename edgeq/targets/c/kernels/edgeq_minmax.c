/* edgeq kernels: int8 elementwise maximum and minimum with numpy broadcasting; both inputs are
 * first rescaled to the output quantization (TFLite MAXIMUM / MINIMUM need one quantization). */
#include "edgeq_minmax.h"
#include "edgeq_support.h"

/* The larger (or the smaller) of the two rescaled inputs, clamped to the activation range. */
static inline void minmax_rows(const edgeq_minmax_params *p, const int8_t *input1,
                               const int8_t *input2, int32_t larger, int8_t *output)
{
    edgeq_broadcast_walk walk;
    int32_t r, i;

    edgeq_broadcast_start(&p->shape, &walk);
    for (r = 0; r < walk.rows; ++r) {
        for (i = 0; i < walk.inner; ++i) {
            const int32_t a = edgeq_rescale(&p->input1, input1[walk.offset1 + i * walk.stride1]);
            const int32_t c = edgeq_rescale(&p->input2, input2[walk.offset2 + i * walk.stride2]);
            int32_t out = larger ? (a > c ? a : c) : (a < c ? a : c);
            out = out < p->act_min ? p->act_min : out;
            out = out > p->act_max ? p->act_max : out;
            output[i] = (int8_t)out;
        }
        output += walk.inner;
        edgeq_broadcast_next_row(&p->shape, &walk);
    }
}

void edgeq_maximum_s8(const edgeq_minmax_params *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    minmax_rows(p, input1, input2, 1, output);
}

void edgeq_minimum_s8(const edgeq_minmax_params *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output)
{
    minmax_rows(p, input1, input2, 0, output);
}
