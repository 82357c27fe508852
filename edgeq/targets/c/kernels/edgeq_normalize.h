/* edgeq kernels: L2 normalization along one axis, int8. */
#ifndef EDGEQ_NORMALIZE_H
#define EDGEQ_NORMALIZE_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 L2_NORMALIZATION along an axis of depth elements at stride inner (outer * inner
 * rows): the int32 sum of squares of x + input_offset over the row, its inverse square root in
 * fixed point (GetInvSqrtQuantizedMultiplierExp), each x + input_offset requantized by it to
 * the fixed output quantization 1/128, zero point 0, saturated to int8. */
typedef struct {
    int32_t outer, depth, inner;
    int32_t input_offset;
} edgeq_l2_normalize_params;

void edgeq_l2_normalize_s8(const edgeq_l2_normalize_params *p, const int8_t *input,
                           int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_NORMALIZE_H */
