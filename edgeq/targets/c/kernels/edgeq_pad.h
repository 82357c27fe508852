/* edgeq kernels: constant padding, int8. */
#ifndef EDGEQ_PAD_H
#define EDGEQ_PAD_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Constant padding: every output value is pad_value except the input, whose element
 * (i0, i1, ...) of input_shape goes to output[output_start + sum_k i_k * output_strides[k]]. */
typedef struct {
    int32_t dims;
    int32_t input_shape[EDGEQ_MAX_DIMS];
    int32_t output_strides[EDGEQ_MAX_DIMS];
    int32_t output_start;
    int32_t output_size;
    int32_t pad_value;
} edgeq_pad_params;

void edgeq_pad_s8(const edgeq_pad_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_PAD_H */
