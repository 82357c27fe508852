/*
 * edgeq integer kernels: reading int32 activations (token ids, masks), which travel as 4
 * little-endian bytes each and need no alignment (the argmax kernel writes its indices the
 * same way).
 */
#ifndef EDGEQ_INDEX_SUPPORT_H
#define EDGEQ_INDEX_SUPPORT_H

#include "edgeq_types.h"

/* bytes of one int32 activation value */
#define EDGEQ_INT32_BYTES 4

/* The int32 value whose 4 little-endian bytes start at `bytes`. */
static inline int32_t edgeq_load_int32_le(const int8_t *bytes)
{
    const uint32_t value = (uint32_t)(uint8_t)bytes[0] | ((uint32_t)(uint8_t)bytes[1] << 8)
                           | ((uint32_t)(uint8_t)bytes[2] << 16) | ((uint32_t)(uint8_t)bytes[3] << 24);
    /* two's complement: the same bits as an int32 (no implementation-defined conversion) */
    return value <= (uint32_t)INT32_MAX ? (int32_t)value : -(int32_t)(~value) - 1;
}

#endif /* EDGEQ_INDEX_SUPPORT_H */
