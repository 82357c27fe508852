/* edgeq kernels: mean over axes, int8 and 16x8 (also the sum: a mean at a finer scale). */
#ifndef EDGEQ_MEAN_H
#define EDGEQ_MEAN_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 MEAN over any axes: for each output element (the kept dimensions, visited
 * through output_shape / output_strides, input element strides), the int32 sum over the
 * reduced dimensions (reduce_shape / reduce_strides) plus input_offset * num_elements,
 * requantized with the multiplier already divided by num_elements, saturated to int8. */
typedef struct {
    edgeq_reduce_axes axes;
    int32_t num_elements;
    int32_t input_offset;
    int32_t multiplier, shift;
    int32_t output_offset;
} edgeq_mean_params;

void edgeq_mean_s8(const edgeq_mean_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);

/* int16 MEAN (16x8 mode): the same with int16 values, zero offsets, saturated to int16. */
void edgeq_mean_s16(const edgeq_mean_params *p, const int16_t *input, int16_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_MEAN_H */
