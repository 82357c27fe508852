/* edgeq kernels: gathers, int8: slices of an activation at constant indices along one axis,
 * and rows of a constant table at run-time ids (embedding). */
#ifndef EDGEQ_GATHER_H
#define EDGEQ_GATHER_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Gather along an axis: the input seen as [outer][depth][inner], the output as
 * [outer][count][inner] with output slice j = input slice indices[j] (0 <= indices[j] < depth,
 * checked at generation time).  Reflect / replicate padding and channel reorders. */
typedef struct {
    int32_t outer, depth, inner;
    int32_t count;
    const int32_t *indices;          /* [count] */
} edgeq_gather_params;

void edgeq_gather_axis_s8(const edgeq_gather_params *p, const int8_t *input,
                          int8_t *EDGEQ_RESTRICT output);

/* Embedding lookup: output row i = table row ids[i], each id an int32 (4 little-endian bytes)
 * clamped to [0, vocabulary - 1] (out-of-range ids never read outside the table). */
typedef struct {
    int32_t count;                   /* ids */
    int32_t vocabulary, dim;         /* table rows and row length */
} edgeq_embedding_params;

void edgeq_embedding_s8(const edgeq_embedding_params *p, const int8_t *table, const int8_t *ids,
                        int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_GATHER_H */
