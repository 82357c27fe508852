/* edgeq kernels: leaky ReLU, int8. */
#ifndef EDGEQ_LEAKY_RELU_H
#define EDGEQ_LEAKY_RELU_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 LEAKY_RELU: x - zero point requantized by the identity multiplier where it is
 * >= 0 and by the alpha multiplier where it is < 0.  Safe in place. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t output_offset;
    int32_t identity_multiplier, identity_shift;   /* s_in / s_out */
    int32_t alpha_multiplier, alpha_shift;         /* alpha * s_in / s_out */
} edgeq_leaky_relu_params;

void edgeq_leaky_relu_s8(const edgeq_leaky_relu_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_LEAKY_RELU_H */
