/* edgeq kernels: softmax and log-softmax, int8. */
#ifndef EDGEQ_SOFTMAX_H
#define EDGEQ_SOFTMAX_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* TFLite reference int8 softmax (gemmlowp fixed-point exp and reciprocal); output scale
 * 1/256, zero point -128.  The axis has depth elements at stride inner; outer * inner rows.
 * Returns 0, or 1 when a row's sum of exps reaches 512 (TFLite's kernel aborts there).
 * Safe in place. */
typedef struct {
    int32_t outer, depth, inner;
    int32_t input_multiplier, input_left_shift;
    int32_t diff_min;
} edgeq_softmax_params;

int edgeq_softmax_s8(const edgeq_softmax_params *p, const int8_t *input, int8_t *output);

/* TFLite reference int8 log-softmax; output scale 16/256, zero point 127.  Rows as softmax.
 * Returns 0, or 1 when a row's int32 sum of exps wraps (TFLite's kernel fails there).  Safe in
 * place. */
typedef struct {
    int32_t outer, depth, inner;
    int32_t input_multiplier, input_left_shift;
    int32_t diff_min;
    int32_t reverse_scaling_divisor, reverse_scaling_left_shift;
} edgeq_log_softmax_params;

int edgeq_log_softmax_s8(const edgeq_log_softmax_params *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_SOFTMAX_H */
