/*
 * edgeq kernel: int8 2-D convolution (one group) as im2col + matrix product.
 *
 * Traversal (a guarantee other code relies on: keep it): output pixels in raster order, two
 * at a time (`columns`).  A step gathers both pixels' windows (input rows oy * stride_height
 * - pad_top + ky * dilation_height inside the input) into the scratch before its first write,
 * then writes its two output pixels (O bytes each) interleaved channel pair by channel pair
 * (edgeq_matmul_s8.c); the steps' output byte ranges increase.
 */
#include "edgeq_conv2d.h"
#include "edgeq_matmul.h"

/* Column q of `columns`: depth k..k+n-1 are the n int8 values at src. */
static void put_run(const int8_t *src, int32_t k, int32_t n, int32_t q, int32_t columns,
                    int32_t depth, void *cols)
{
    int32_t j = 0;
#if EDGEQ_DSP
    int16_t *col16 = (int16_t *)cols;
    if (((k | n) & 3) == 0) {
        uint32_t *group = (uint32_t *)cols + (k >> 2) * 2 * columns + 2 * q;
        for (; j < n; j += 4) {
            edgeq_matmul_widen4(edgeq_load32(src + j), group);
            group += 2 * columns;
        }
        return;
    }
    for (; j < n; ++j) {
        col16[edgeq_matmul_slot(k + j, q, columns)] = src[j];
    }
    (void)depth;
#else
    int8_t *col8 = (int8_t *)cols + q * depth;
    (void)columns;
    for (; j < n; ++j) {
        col8[k + j] = src[j];
    }
#endif
}

/* Column q: depth k..k+n-1 are `value` (the padding). */
static EDGEQ_NOINLINE void put_fill(int32_t value, int32_t k, int32_t n, int32_t q, int32_t columns,
                     int32_t depth, void *cols)
{
    int32_t j;
#if EDGEQ_DSP
    int16_t *col16 = (int16_t *)cols;
    for (j = 0; j < n; ++j) {
        col16[edgeq_matmul_slot(k + j, q, columns)] = (int16_t)value;
    }
    (void)depth;
#else
    int8_t *col8 = (int8_t *)cols + q * depth;
    (void)columns;
    for (j = 0; j < n; ++j) {
        col8[k + j] = (int8_t)value;
    }
#endif
}

/* The window of output pixel (oy, ox) as column q of `columns`: kernel rows, columns,
 * channels. */
static void gather(const edgeq_conv2d_im2col_params *p, const int8_t *input, int32_t oy, int32_t ox,
                   int32_t q, int32_t columns, void *cols)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t c = g->input_channels;
    const int32_t kw = g->kernel_width;
    const int32_t row_len = kw * c;
    const int32_t depth = p->matmul.depth;
    const int32_t iy0 = oy * g->stride_height - g->pad_top;
    const int32_t ix0 = ox * g->stride_width - g->pad_left;
    const int32_t last_ix = ix0 + (kw - 1) * g->dilation_width;
    int32_t ky, kx, k = 0;

    for (ky = 0; ky < g->kernel_height; ++ky, k += row_len) {
        const int32_t iy = iy0 + ky * g->dilation_height;
        const int8_t *row;
        if (iy < 0 || iy >= g->input_height) {
            put_fill(p->pad_value, k, row_len, q, columns, depth, cols);
            continue;
        }
        row = input + iy * g->input_width * c;
        if (g->dilation_width == 1 && ix0 >= 0 && last_ix < g->input_width) {
            put_run(row + ix0 * c, k, row_len, q, columns, depth, cols);
            continue;
        }
        for (kx = 0; kx < kw; ++kx) {
            const int32_t ix = ix0 + kx * g->dilation_width;
            if (ix < 0 || ix >= g->input_width) {
                put_fill(p->pad_value, k + kx * c, c, q, columns, depth, cols);
            } else {
                put_run(row + ix * c, k + kx * c, c, q, columns, depth, cols);
            }
        }
    }
#if EDGEQ_DSP
    if (depth & 3) {    /* the last group's padding meets zero weights */
        put_fill(0, depth, 4 - (depth & 3), q, columns, depth, cols);
    }
#endif
}

void edgeq_conv2d_im2col_s8(const edgeq_conv2d_im2col_params *p, const int8_t *input,
                            int8_t *output, int16_t *scratch)
{
    const edgeq_conv_geometry *g = &p->geometry;
    const int32_t ow = g->output_width;
    const int32_t pixels = g->output_height * ow;
    const int32_t o = p->matmul.channels;
    const int32_t k = p->matmul.depth;
    const int32_t step = p->columns;
    int32_t i = 0;

    for (; i < pixels; i += step) {
        const int32_t n = pixels - i < step ? pixels - i : step;
        int32_t q;
        for (q = 0; q < n; ++q) {
            gather(p, input, (i + q) / ow, (i + q) % ow, q, n, scratch);
        }
        edgeq_matmul_cols_s8(&p->matmul, scratch, n, k, o, output + i * o);
    }
}
