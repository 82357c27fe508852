/* edgeq kernels: concatenation, int8. */
#ifndef EDGEQ_CONCAT_H
#define EDGEQ_CONCAT_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One input of a concatenation: the tensors are seen as `outer` rows; this input's rows of
 * input_row values go to output[r * output_row + output_start ...], rescaled to the output
 * quantization.  One call per input. */
typedef struct {
    int32_t outer;
    int32_t input_row;
    int32_t output_row;
    int32_t output_start;
    edgeq_rescale_params rescale;
} edgeq_concat_params;

void edgeq_concat_s8(const edgeq_concat_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_CONCAT_H */
