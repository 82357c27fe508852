/* edgeq kernels: argmax along an axis, int8 in, int32 indices out. */
#ifndef EDGEQ_ARGMAX_H
#define EDGEQ_ARGMAX_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Argmax along an axis of depth elements at stride inner (outer * inner results): the index of
 * the largest int8 value, the first on ties.  Each index is an int32 written as 4 bytes,
 * little-endian (no alignment needed). */
typedef struct {
    int32_t outer, depth, inner;
} edgeq_argmax_params;

void edgeq_argmax_s8(const edgeq_argmax_params *p, const int8_t *input, int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_ARGMAX_H */
