/* edgeq kernels: int8 <-> int16 requantization. */
#ifndef EDGEQ_REQUANTIZE_H
#define EDGEQ_REQUANTIZE_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Change of integer type between int8 and int16 regions (TFLite QUANTIZE from an integer
 * tensor): y = saturate(multiply_by_quantized_multiplier(x + input_offset) + output_offset)
 * to the output type, with the 32-bit double-rounding multiplier. */
typedef struct {
    int32_t size;
    int32_t input_offset;            /* -(input zero point) */
    int32_t multiplier, shift;       /* input scale / output scale */
    int32_t output_offset;           /* output zero point */
} edgeq_requantize_params;

void edgeq_requantize_s8_s16(const edgeq_requantize_params *p, const int8_t *input,
                             int16_t *EDGEQ_RESTRICT output);
void edgeq_requantize_s16_s8(const edgeq_requantize_params *p, const int16_t *input,
                             int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_REQUANTIZE_H */
