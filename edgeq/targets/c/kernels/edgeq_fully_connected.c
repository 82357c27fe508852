/*
 * edgeq kernel: int8 fully connected layer: per input row, a matrix product read straight
 * from the row (edgeq_matmul.h's packed weights, two output features at a time).
 *
 * Traversal (a guarantee other code relies on: keep it): rows in increasing order; row r's
 * outputs are written at increasing addresses, and row r's input is read again for every
 * pair of outputs, between those writes; no row reads another row's input.
 */
#include "edgeq_fully_connected.h"
#include "edgeq_matmul.h"

void edgeq_fully_connected_s8(const edgeq_fully_connected_params *params, const int8_t *input,
                              int8_t *output)
{
    /* a local copy: the output may overlap the input (no restrict), so stores through it
     * could otherwise change the parameters as far as the compiler knows */
    const edgeq_fully_connected_params local = *params;
    const edgeq_fully_connected_params *const p = &local;
    const edgeq_matmul_s8 *m = &p->matmul;
    const int32_t in_f = m->depth;
    const int32_t out_f = m->channels;
    const int32_t pair_bytes = 2 * edgeq_matmul_depth4(in_f);
    int32_t r, o;

    for (r = 0; r < p->rows; ++r, input += in_f, output += out_f) {
        const int8_t *wp = m->weights;
        for (o = 0; o < out_f; o += 2, wp += pair_bytes) {
            const int32_t o1 = o + 1 < out_f ? o + 1 : o;
            int32_t a0 = m->bias[o], a1 = m->bias[o1];
            int32_t k = 0;
#if EDGEQ_DSP
            const uint32_t *w = (const uint32_t *)(const void *)wp;
            for (; k + 4 <= in_f; k += 4, w += 2) {
                const uint32_t xv = edgeq_load32(input + k);
                const int32_t xe = edgeq_sxtb16(xv), xo = edgeq_sxtb16_ror8(xv);
                a0 = edgeq_smlad(edgeq_sxtb16(w[0]), xe, a0);
                a0 = edgeq_smlad(edgeq_sxtb16_ror8(w[0]), xo, a0);
                a1 = edgeq_smlad(edgeq_sxtb16(w[1]), xe, a1);
                a1 = edgeq_smlad(edgeq_sxtb16_ror8(w[1]), xo, a1);
            }
#endif
            for (; k < in_f; ++k) {
                const int32_t j = ((k >> 2) << 3) + (k & 3);
                a0 += wp[j] * input[k];
                a1 += wp[j + 4] * input[k];
            }
            output[o] = edgeq_matmul_output(m, a0, o);
            if (o1 != o) {
                output[o1] = edgeq_matmul_output(m, a1, o1);
            }
        }
    }
}
