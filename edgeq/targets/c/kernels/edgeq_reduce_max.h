/* edgeq kernels: maximum over axes, int8 (input and output share one quantization). */
#ifndef EDGEQ_REDUCE_MAX_H
#define EDGEQ_REDUCE_MAX_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For each output element (the kept dimensions, visited through output_shape / output_strides,
 * input element strides), the largest int8 value over the reduced dimensions (reduce_shape /
 * reduce_strides).  No requantization: the maximum of the integers is the integer of the
 * maximum. */
typedef struct {
    edgeq_reduce_axes axes;
} edgeq_reduce_max_params;

void edgeq_reduce_max_s8(const edgeq_reduce_max_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_REDUCE_MAX_H */
