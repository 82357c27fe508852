/* edgeq kernels: 256-entry table lookup, int8. */
#ifndef EDGEQ_LOOKUP_H
#define EDGEQ_LOOKUP_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* output[i] = table[input[i] + 128]: activations with a 256-entry int8 table (sigmoid, tanh,
 * hardswish, gelu).  Safe in place. */
void edgeq_lookup_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_LOOKUP_H */
