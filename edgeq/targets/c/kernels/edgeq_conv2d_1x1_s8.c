/*
 * edgeq kernel: int8 1x1 convolution (stride 1, no padding), a matrix product over pixels.
 *
 * Traversal (a guarantee other code relies on: keep it): pixels in increasing order, two at a
 * time (the last one alone when their number is odd).  Step s reads input pixels 2s, 2s + 1
 * (C bytes each) and writes output pixels 2s, 2s + 1 (O bytes each); the steps' output byte
 * ranges increase, within a step the two pixels' outputs are written interleaved, channel
 * pair by channel pair (edgeq_matmul_s8.c).  DSP path: a step reads both input pixels
 * completely (widening them into the scratch) before its first write.  Portable path: a
 * step reads its two input pixels again for every channel pair, between its writes.
 */
#include "edgeq_conv2d.h"
#include "edgeq_matmul.h"

#if EDGEQ_DSP
/* The `c` int8 values at x as column q of `columns` interleaved int16 columns, zero padded
 * to whole groups of 4. */
static void widen_pixel(const int8_t *x, int32_t c, int32_t q, int32_t columns, int16_t *cols)
{
    uint32_t *group = (uint32_t *)(void *)cols + 2 * q;
    const int32_t step = 2 * columns;     /* words from one group to the next */
    int32_t k = 0;
    for (; k + 4 <= c; k += 4) {
        edgeq_matmul_widen4(edgeq_load32(x + k), group);
        group += step;
    }
    if (k < c) {
        uint32_t word = 0;
        int32_t j;
        for (j = 0; k + j < c; ++j) {
            word |= (uint32_t)(uint8_t)x[k + j] << (8 * j);
        }
        edgeq_matmul_widen4(word, group);
    }
}
#endif

void edgeq_conv2d_1x1_s8(const edgeq_conv2d_1x1_params *p, const int8_t *input, int8_t *output,
                         int16_t *scratch)
{
    const edgeq_matmul_s8 *m = &p->matmul;
    const int32_t c = m->depth;
    const int32_t o = m->channels;
    const int32_t pixels = p->pixels;
    int32_t i;

    for (i = 0; i + 2 <= pixels; i += 2) {
        const int8_t *x = input + i * c;
#if EDGEQ_DSP
        if ((c & 3) == 0) {     /* both pixels, group by group */
            uint32_t *group = (uint32_t *)(void *)scratch;
            const int8_t *x1 = x + c, *end = x + c;
            for (; x != end; x += 4, x1 += 4, group += 4) {
                edgeq_matmul_widen4(edgeq_load32(x), group);
                edgeq_matmul_widen4(edgeq_load32(x1), group + 2);
            }
        } else {
            widen_pixel(x, c, 0, 2, scratch);
            widen_pixel(x + c, c, 1, 2, scratch);
        }
        edgeq_matmul_cols_s8(m, scratch, 2, 0, o, output + i * o);
#else
        (void)scratch;
        edgeq_matmul_cols_s8(m, x, 2, c, o, output + i * o);
#endif
    }
    if (i < pixels) {
#if EDGEQ_DSP
        widen_pixel(input + i * c, c, 0, 1, scratch);
        edgeq_matmul_cols_s8(m, scratch, 1, 0, o, output + i * o);
#else
        edgeq_matmul_cols_s8(m, input + i * c, 1, c, o, output + i * o);
#endif
    }
}
