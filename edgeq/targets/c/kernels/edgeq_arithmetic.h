/* edgeq kernels: elementwise arithmetic beyond add and multiply: squared difference, division,
 * absolute value (int8 and 16x8) and the cast of int32 ids to int8. */
#ifndef EDGEQ_ARITHMETIC_H
#define EDGEQ_ARITHMETIC_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 SQUARED_DIFFERENCE: each input offset by its zero point, shifted left by
 * left_shift and rescaled to a common scale (ADD's input rescaling), the difference squared in
 * int32 and requantized to the output, saturated to int8; numpy broadcasting.  Safe in place. */
typedef struct {
    int32_t left_shift;
    int32_t input1_offset, input1_multiplier, input1_shift;
    int32_t input2_offset, input2_multiplier, input2_shift;
    int32_t output_offset, output_multiplier, output_shift;
    edgeq_broadcast_shape shape;
} edgeq_squared_difference_params;

void edgeq_squared_difference_s8(const edgeq_squared_difference_params *p, const int8_t *input1,
                                 const int8_t *input2, int8_t *output);

/* TFLite int8 DIV (DivElementwise): the numerator x1 + input1_offset over the denominator
 * x2 + input2_offset (signs moved to the numerator), by the fixed-point reciprocal of the
 * denominator and one requantization by multiplier / shift (input1 scale / (input2 scale *
 * output scale)), saturated to int8; numpy broadcasting.  A denominator equal to its zero point
 * gives the output zero point (the float op's 0).  Safe in place. */
typedef struct {
    int32_t input1_offset, input2_offset;
    int32_t output_offset;
    int32_t multiplier, shift;
    edgeq_broadcast_shape shape;
} edgeq_div_params;

void edgeq_div_s8(const edgeq_div_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output);

/* TFLite ABS: |x + input_offset|, requantized by multiplier / shift (input scale / output
 * scale) when rescale is non-zero, plus output_offset, saturated to the output type.  The int16
 * kernel has zero offsets (16x8: zero points 0).  Safe in place. */
typedef struct {
    int32_t size;
    int32_t input_offset;
    int32_t rescale;
    int32_t multiplier, shift;
    int32_t output_offset;
} edgeq_abs_params;

void edgeq_abs_s8(const edgeq_abs_params *p, const int8_t *input, int8_t *output);

void edgeq_abs_s16(const edgeq_abs_params *p, const int16_t *input, int16_t *output);

/* An int32 activation (ids, an attention mask: 4 little-endian bytes each) as int8 values at
 * scale 1, zero point 0, saturating to [-128, 127]. */
void edgeq_cast_s32_s8(const int8_t *input, int8_t *EDGEQ_RESTRICT output, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_ARITHMETIC_H */
