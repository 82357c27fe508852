/* edgeq kernel: int8 copy (a reshape whose output cannot share its input's memory). */
#include "edgeq_copy.h"

void edgeq_copy_s8(const int8_t *input, int8_t *EDGEQ_RESTRICT output, int32_t size)
{
    int32_t i;

    for (i = 0; i < size; ++i) {
        output[i] = input[i];
    }
}
