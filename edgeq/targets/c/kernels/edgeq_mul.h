/* edgeq kernels: elementwise multiply, int8 and 16x8. */
#ifndef EDGEQ_MUL_H
#define EDGEQ_MUL_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 MUL: y = requantize((x1 + input1_offset) * (x2 + input2_offset)), numpy
 * broadcasting.  Safe in place. */
typedef struct {
    int32_t input1_offset, input2_offset;
    int32_t output_offset;
    int32_t multiplier, shift;       /* input1 scale * input2 scale / output scale */
    int32_t act_min, act_max;
    edgeq_broadcast_shape shape;
} edgeq_mul_params;

void edgeq_mul_s8(const edgeq_mul_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output);

/* TFLite int16 MUL (16x8 mode): the same arithmetic on int16 values with zero offsets, clamped
 * to [act_min, act_max] in int16.  Safe in place. */
void edgeq_mul_s16(const edgeq_mul_params *p, const int16_t *input1, const int16_t *input2,
                   int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_MUL_H */
