/* edgeq kernels: strided slice, int8 and int16. */
#ifndef EDGEQ_SLICE_H
#define EDGEQ_SLICE_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Strided slice: output[i0][i1]... = input[input_start + sum_k i_k * input_strides[k]] over
 * the output shape (strides already multiplied by the slice steps).  The input addresses
 * increase strictly from input_start >= 0, so the output may overwrite the start of the input
 * (in place). */
typedef struct {
    int32_t dims;
    int32_t output_shape[EDGEQ_MAX_DIMS];
    int32_t input_strides[EDGEQ_MAX_DIMS];
    int32_t input_start;
} edgeq_slice_params;

void edgeq_slice_s8(const edgeq_slice_params *p, const int8_t *input, int8_t *output);

/* The same on int16 values (16x8 layers: an LSTM's gates); strides in elements. */
void edgeq_slice_s16(const edgeq_slice_params *p, const int16_t *input, int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_SLICE_H */
