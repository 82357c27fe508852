/* edgeq kernels: transpose, int8 and int16. */
#ifndef EDGEQ_TRANSPOSE_H
#define EDGEQ_TRANSPOSE_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* output[i0][i1]... = input[sum_k i_k * input_strides[k]] over the output shape. */
typedef struct {
    int32_t dims;
    int32_t output_shape[EDGEQ_MAX_DIMS];
    int32_t input_strides[EDGEQ_MAX_DIMS];
} edgeq_transpose_params;

void edgeq_transpose_s8(const edgeq_transpose_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);
void edgeq_transpose_s16(const edgeq_transpose_params *p, const int16_t *input,
                         int16_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_TRANSPOSE_H */
