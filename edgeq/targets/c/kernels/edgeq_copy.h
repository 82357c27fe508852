/* edgeq kernels: byte copy. */
#ifndef EDGEQ_COPY_H
#define EDGEQ_COPY_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Plain copy of size bytes (a reshape that cannot alias its input, a graph output stored
 * elsewhere; int16 tensors too, as bytes). */
void edgeq_copy_s8(const int8_t *input, int8_t *EDGEQ_RESTRICT output, int32_t size);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_COPY_H */
