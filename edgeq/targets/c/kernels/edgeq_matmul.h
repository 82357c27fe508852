/*
 * edgeq integer kernels: the matrix-product core of the 1x1 and im2col convolutions and of the
 * fully connected layers (edgeq_matmul_s8.c), with the layouts it reads.
 *
 * Weights (edgeq_matmul_s8.weights), packed by the generator in the order of reading: output
 * channels in pairs (an odd last channel is paired with a zero channel), and for each pair
 * the depth K in groups of 4 (the last group zero padded): group g of pair j is 8 bytes,
 * w[2j][4g..4g+3] then w[2j+1][4g..4g+3].  One 64-bit load gives two channels' next 4 weights.
 *
 * Columns (the right-hand side), DSP path: int16, in groups of 4 depths as SXTB16 widens a
 * 32-bit word of 4 int8 values: x0 x2 x1 x3 (edgeq_matmul_widen4).  A weight word then meets
 * its column words with SXTB16 (w0, w2) and SXTB16 ROR 8 (w1, w3) and no shuffling: two
 * SMLADs per 4 products.  With two columns (two output pixels) the groups interleave:
 * group g is 8 int16, column 0's 4 then column 1's.  Portable path: int8 columns, depth
 * rounded up to a multiple of 4, one after the other.
 */
#ifndef EDGEQ_MATMUL_H
#define EDGEQ_MATMUL_H

#include "edgeq_support.h"

/* K rounded up to whole groups of 4. */
static inline int32_t edgeq_matmul_depth4(int32_t depth)
{
    return (depth + 3) & ~3;
}

/* Bytes of scratch a column of `depth` values takes, for `columns` columns (1 or 2). */
static inline int32_t edgeq_matmul_column_bytes(int32_t depth, int32_t columns)
{
    return edgeq_matmul_depth4(depth) * columns * (EDGEQ_DSP ? 2 : 1);
}

#if EDGEQ_DSP
/* The 4 int8 values of `word` as one column group: two int16 pairs (x0, x2), (x1, x3). */
static inline void edgeq_matmul_widen4(uint32_t word, uint32_t *group)
{
    group[0] = (uint32_t)edgeq_sxtb16(word);
    group[1] = (uint32_t)edgeq_sxtb16_ror8(word);
}

/* Index (in int16) of depth k of column q when `columns` columns interleave their groups. */
static inline int32_t edgeq_matmul_slot(int32_t k, int32_t q, int32_t columns)
{
    return (k >> 2) * 4 * columns + 4 * q + ((k & 1) << 1) + ((k >> 1) & 1);
}
#endif

/* Requantized outputs of `columns` (1 or 2) columns: out[q * out_stride + o] for o < channels,
 * with the fast requantization (m->fast_requant must be 1: the generator's condition).
 * DSP: `cols` holds int16 column groups (interleaved for two columns), col_stride unused;
 * portable: int8 columns of `depth` values, col_stride values apart. */
void edgeq_matmul_cols_s8(const edgeq_matmul_s8 *m, const void *cols, int32_t columns,
                          int32_t col_stride, int32_t out_stride, int8_t *out);


#endif /* EDGEQ_MATMUL_H */
