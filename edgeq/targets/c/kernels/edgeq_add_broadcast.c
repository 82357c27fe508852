/* edgeq kernel: int8 add with numpy broadcasting (TFLite ADD arithmetic). */
#include "edgeq_add_support.h"

void edgeq_add_broadcast_s8(const edgeq_add_broadcast_params *p, const int8_t *input1,
                            const int8_t *input2, int8_t *output)
{
    edgeq_add_broadcast_rows(p, input1, input2, 1, output);
}
