/* edgeq kernels: sigmoid and tanh in 16x8 mode (int16 in, int16 out at 2^-15, zero point 0).
 * Their int8 forms are 256-entry tables (edgeq_lookup.h). */
#ifndef EDGEQ_SIGMOID_H
#define EDGEQ_SIGMOID_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite's int16 LOGISTIC / TANH: the input rescaled to the table's 1/24-unit steps by
 * input_multiplier / input_left_shift (multiplier 0: a power-of-two input scale, the input
 * times 3 << input_left_shift), then linear interpolation in TFLite's 256-entry sigmoid table
 * (0.16 fixed point; `table`, written into the model's weights); tanh(x) = 2 sigmoid(2x) - 1 on
 * the same table.  Safe in place. */
typedef struct {
    int32_t size;
    int32_t input_multiplier, input_left_shift;
    const uint16_t *table;           /* [256] */
} edgeq_sigmoid_params;

void edgeq_sigmoid_s16(const edgeq_sigmoid_params *p, const int16_t *input, int16_t *output);

void edgeq_tanh_s16(const edgeq_sigmoid_params *p, const int16_t *input, int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_SIGMOID_H */
