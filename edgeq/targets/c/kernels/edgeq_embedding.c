/* edgeq kernel: int8 embedding lookup (rows of a constant table at int32 ids). */
#include "edgeq_gather.h"
#include "edgeq_index_support.h"

void edgeq_embedding_s8(const edgeq_embedding_params *p, const int8_t *table, const int8_t *ids,
                        int8_t *EDGEQ_RESTRICT output)
{
    int32_t k, i;

    for (k = 0; k < p->count; ++k) {
        int32_t id = edgeq_load_int32_le(ids + k * EDGEQ_INT32_BYTES);
        const int8_t *row;
        id = id < 0 ? 0 : id;
        id = id >= p->vocabulary ? p->vocabulary - 1 : id;
        row = table + id * p->dim;
        for (i = 0; i < p->dim; ++i) {
            output[i] = row[i];
        }
        output += p->dim;
    }
}
