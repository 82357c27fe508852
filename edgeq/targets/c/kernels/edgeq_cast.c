/* edgeq kernel: int32 activation -> int8 at scale 1, zero point 0, saturating (an integer
 * attention mask entering real-valued arithmetic). */
#include "edgeq_arithmetic.h"
#include "edgeq_index_support.h"

void edgeq_cast_s32_s8(const int8_t *input, int8_t *EDGEQ_RESTRICT output, int32_t size)
{
    int32_t i;

    for (i = 0; i < size; ++i) {
        int32_t v = edgeq_load_int32_le(input + i * EDGEQ_INT32_BYTES);
        v = v < EDGEQ_INT8_MIN ? EDGEQ_INT8_MIN : v;
        v = v > EDGEQ_INT8_MAX ? EDGEQ_INT8_MAX : v;
        output[i] = (int8_t)v;
    }
}
