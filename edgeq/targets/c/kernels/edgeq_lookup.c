/* edgeq kernel: int8 -> int8 table lookup (sigmoid, tanh, hardswish, gelu: the 256-entry
 * table is computed by edgeq from the op's integer definition).  Safe in place. */
#include "edgeq_lookup.h"

void edgeq_lookup_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size)
{
    int32_t i;

    for (i = 0; i < size; ++i) {
        output[i] = table[(int32_t)input[i] + 128];
    }
}
