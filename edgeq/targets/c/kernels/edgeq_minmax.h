/* edgeq kernels: elementwise maximum and minimum, int8. */
#ifndef EDGEQ_MINMAX_H
#define EDGEQ_MINMAX_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* MAXIMUM / MINIMUM: each input rescaled to the output quantization, then compared; numpy
 * broadcasting.  Safe in place. */
typedef struct {
    edgeq_rescale_params input1, input2;
    int32_t act_min, act_max;
    edgeq_broadcast_shape shape;
} edgeq_minmax_params;

void edgeq_maximum_s8(const edgeq_minmax_params *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);
void edgeq_minimum_s8(const edgeq_minmax_params *p, const int8_t *input1, const int8_t *input2,
                      int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_MINMAX_H */
