/* edgeq kernels: elementwise add and subtract (TFLite ADD arithmetic), int8 and 16x8. */
#ifndef EDGEQ_ADD_H
#define EDGEQ_ADD_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite int8 ADD: both inputs shifted left by left_shift, rescaled to a common scale,
 * summed and requantized.  Safe in place (output may equal either input). */
typedef struct {
    int32_t size;
    int32_t left_shift;
    int32_t input1_offset, input1_multiplier, input1_shift;
    int32_t input2_offset, input2_multiplier, input2_shift;
    int32_t output_offset, output_multiplier, output_shift;
    int32_t act_min, act_max;
    /* 1 when edgeq's generator checked, for every input value, the preconditions of
     * edgeq_requantize_fast() for the three rescalings (edgeq_add_s8 then uses it) */
    int32_t fast;
} edgeq_add_params;

void edgeq_add_s8(const edgeq_add_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output);

/* int16 ADD (16x8 mode, TFLite's general-scale int16 ADD): the int8 arithmetic with
 * left_shift 15 and zero offsets, clamped to [act_min, act_max] in int16.  Safe in place. */
void edgeq_add_s16(const edgeq_add_params *p, const int16_t *input1, const int16_t *input2,
                   int16_t *output);

/* ADD and SUB with numpy broadcasting. */
typedef struct {
    edgeq_add_params add;            /* add.size is unused */
    edgeq_broadcast_shape shape;
} edgeq_add_broadcast_params;

void edgeq_add_broadcast_s8(const edgeq_add_broadcast_params *p, const int8_t *input1,
                            const int8_t *input2, int8_t *output);

/* TFLite int8 SUB: ADD's arithmetic with the second operand negated.  Safe in place (output
 * may equal an input of the output's shape). */
void edgeq_sub_s8(const edgeq_add_broadcast_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output);

/* TFLite int16 SUB as edgeq computes it (16x8 mode, zero points 0): the second operand negated
 * with saturation (-(-32768) is 32767, TFLite's int16 MUL by -1), then int16 ADD (left shift
 * 15), numpy broadcasting.  Safe in place. */
void edgeq_sub_s16(const edgeq_add_broadcast_params *p, const int16_t *input1,
                   const int16_t *input2, int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_ADD_H */
