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

/* Output o with the exact requantization (edgeq_requantize): no layer of the example models
 * takes it, so it is out of line (inlined twice in the loop below it cost 150 bytes). */
static EDGEQ_COLD int8_t output_exact(const edgeq_matmul_s8 *m, int32_t acc, int32_t o)
{
    return edgeq_requantize(acc, m->requant.multiplier[o], m->requant.shift[o], m->output_offset,
                            m->requant.act_min, m->requant.act_max);
}

/* Accumulator -> int8 with the fast requantization (right shift -shift), clamped. */
static inline int8_t output_fast(int32_t acc, int32_t multiplier, int32_t shift, uint32_t offset2,
                                 int32_t lo, int32_t hi)
{
    const int32_t y = edgeq_requantize_fast(acc, multiplier, -shift,
                                            (int32_t)(offset2 << (-shift - 1)));
    return (int8_t)(y < lo ? lo : (y > hi ? hi : y));
}

void edgeq_fully_connected_s8(const edgeq_fully_connected_params *params, const int8_t *input,
                              int8_t *output)
{
    /* locals: the output may overlap the input (no restrict), so stores through it could
     * otherwise change the parameters as far as the compiler knows */
    const edgeq_matmul_s8 *const m = &params->matmul;
    const int32_t rows = params->rows;
    const int32_t in_f = m->depth;
    const int32_t out_f = m->channels;
    const int32_t pair_bytes = 2 * edgeq_matmul_depth4(in_f);
    const int8_t *const weights = m->weights;
    const int32_t *const bias = m->bias;
    const int32_t *const multiplier = m->requant.multiplier;
    const int8_t *const shift = m->requant.shift;
    const uint32_t offset2 = (uint32_t)(2 * m->output_offset + 1);
    const int32_t lo = m->requant.act_min, hi = m->requant.act_max;
    const int32_t fast = m->fast_requant;
    int32_t r, o;

    for (r = 0; r < rows; ++r, input += in_f, output += out_f) {
        const int8_t *wp = weights;
        for (o = 0; o < out_f; o += 2, wp += pair_bytes) {
            const int32_t o1 = o + 1 < out_f ? o + 1 : o;
            int32_t a0 = bias[o], a1 = bias[o1];
            int32_t k = 0;
#if EDGEQ_DSP
            /* whole groups of 4 inputs: a pair's group is 2 words of weights */
            const uint32_t *w = (const uint32_t *)(const void *)wp;
            const uint32_t *const w_end = w + 2 * (in_f >> 2);
            const int8_t *x = input;
            while (w != w_end) {
                uint32_t w0, w1;
                const uint32_t xv = edgeq_load32(x);
                const int32_t xe = edgeq_sxtb16(xv), xo = edgeq_sxtb16_ror8(xv);
                edgeq_load2_inc(&w, &w0, &w1);
                x += 4;
                a0 = edgeq_smlad(edgeq_sxtb16(w0), xe, a0);
                a0 = edgeq_smlad(edgeq_sxtb16_ror8(w0), xo, a0);
                a1 = edgeq_smlad(edgeq_sxtb16(w1), xe, a1);
                a1 = edgeq_smlad(edgeq_sxtb16_ror8(w1), xo, a1);
            }
            k = in_f & ~3;
#endif
            for (; k < in_f; ++k) {
                const int32_t j = ((k >> 2) << 3) + (k & 3);
                a0 += wp[j] * input[k];
                a1 += wp[j + 4] * input[k];
            }
            if (!fast) {
                output[o] = output_exact(m, a0, o);
                if (o1 != o) {
                    output[o1] = output_exact(m, a1, o1);
                }
                continue;
            }
            output[o] = output_fast(a0, multiplier[o], shift[o], offset2, lo, hi);
            if (o1 != o) {
                output[o1] = output_fast(a1, multiplier[o1], shift[o1], offset2, lo, hi);
            }
        }
    }
}
