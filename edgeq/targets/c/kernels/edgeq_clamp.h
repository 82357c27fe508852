/* edgeq kernels: standalone clamp, int8. */
#ifndef EDGEQ_CLAMP_H
#define EDGEQ_CLAMP_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Standalone clamp (ReLU, ReLU6, hardtanh): y = clamp(rescale(x - zp_in) + zp_out).
 * Safe in place. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t multiplier, shift;
    int32_t output_offset;
    int32_t act_min, act_max;
} edgeq_clamp_params;

void edgeq_clamp_s8(const edgeq_clamp_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_CLAMP_H */
