/* edgeq kernels: PReLU, int8. */
#ifndef EDGEQ_PRELU_H
#define EDGEQ_PRELU_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 PRELU: y = requantize(x - zp) where x >= zp, else requantize((x - zp) *
 * (alpha - alpha_zp)); alpha (input2) is broadcast against x (input1).  Safe in place. */
typedef struct {
    int32_t input_offset;
    int32_t alpha_offset;
    int32_t output_offset;
    int32_t identity_multiplier, identity_shift;   /* s_in / s_out */
    int32_t alpha_multiplier, alpha_shift;         /* s_in * s_alpha / s_out */
    edgeq_broadcast_shape shape;
} edgeq_prelu_params;

void edgeq_prelu_s8(const edgeq_prelu_params *p, const int8_t *input, const int8_t *alpha,
                    int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_PRELU_H */
