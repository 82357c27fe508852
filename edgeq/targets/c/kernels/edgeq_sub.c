/* edgeq kernel: int8 elementwise subtract with numpy broadcasting (TFLite ADD arithmetic with
 * the second operand negated before it is rescaled). */
#include "edgeq_add_support.h"

void edgeq_sub_s8(const edgeq_add_broadcast_params *p, const int8_t *input1, const int8_t *input2,
                  int8_t *output)
{
    edgeq_add_broadcast_rows(p, input1, input2, -1, output);
}
