/* edgeq kernels: 2-D convolution, int8 and 16x8. */
#ifndef EDGEQ_CONV2D_H
#define EDGEQ_CONV2D_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Regular or grouped 2-D convolution.  input [H][W][C], weights OHWI with I = C / groups,
 * output [OH][OW][O]; acc = bias + sum w * (x + input_offset) over the taps inside the input,
 * requantized per output channel. */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t output_channels;
    int32_t groups;
    int32_t input_offset;            /* -(input zero point) */
    int32_t output_offset;           /* output zero point */
    const int8_t *weights;
    const int32_t *bias;             /* [O] */
    edgeq_channel_requant requant;
} edgeq_conv2d_params;

/* Traversal contract (edgeq's memory plan overlaps output and input on it; edgeq/ops/traversal.py):
 * output pixels in raster order; no read for a pixel after a write of a later pixel.  Hence
 * no restrict on the pointers: the output may overlap the input it has consumed. */
void edgeq_conv2d_s8(const edgeq_conv2d_params *p, const int8_t *input, int8_t *output);

/* 1x1 convolution, stride 1, no padding: a matrix product, one column per pixel.  Two pixels
 * at a time: pixels p and p + 1 are read (widened into `scratch` on the DSP path) before
 * their outputs are written, so the output may overlap the input as long as writing pixels
 * p, p + 1 never reaches input pixels above p + 1 (edgeq's planner places them so).
 * scratch: edgeq_matmul_column_bytes(input channels, 2) bytes, 4-byte aligned. */
typedef struct {
    int32_t pixels;                  /* H * W */
    edgeq_matmul_s8 matmul;          /* depth = input channels, channels = output channels */
} edgeq_conv2d_1x1_params;

void edgeq_conv2d_1x1_s8(const edgeq_conv2d_1x1_params *p, const int8_t *input, int8_t *output,
                         int16_t *scratch);

/* Regular (one group) 2-D convolution as im2col + matrix product: the window of each output
 * pixel (kernel rows, then columns, then channels: the OHWI weights' order) becomes a column
 * of K = kernel_height * kernel_width * C values, the input zero point (pad_value) where the
 * window lies in the padding.  `columns` output pixels (1 or 2) at a time, in raster order;
 * their windows are gathered before their outputs are written.
 * scratch: edgeq_matmul_column_bytes(K, columns) bytes, 4-byte aligned. */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t pad_value;               /* input zero point */
    int32_t columns;                 /* output pixels per step: 1 or 2 */
    edgeq_matmul_s8 matmul;          /* depth = K, channels = output channels */
} edgeq_conv2d_im2col_params;

void edgeq_conv2d_im2col_s8(const edgeq_conv2d_im2col_params *p, const int8_t *input,
                            int8_t *output, int16_t *scratch);

/* 2-D convolution of a one-channel input (input [H][W][1], dilation 1), straight from the
 * input: acc = bias + sum w * x over the window, the input offset folded into the biases and
 * the pad value (input zero point) standing for the taps outside the input.  Weights: for
 * each group of 4 output channels (the last zero padded), each kernel row, each group of 4
 * taps j (the row zero padded to width4 = kernel_width rounded up to 4), each of the 4
 * channels: the int16 weights of taps 4j, 4j + 2, 4j + 1, 4j + 3 (as SXTB16 widens 4 input
 * bytes).  Output pixels in raster order, each window read before the pixel's writes.
 * scratch: kernel_height * width4 bytes (the window of a pixel at the border).  The output
 * stage is edgeq_requantize_fast(): the generator picks this kernel only where it is exact. */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t pad_value;               /* input zero point */
    int32_t output_channels;         /* O */
    const int16_t *weights;          /* [ceil(O / 4)][KH][width4 / 4][4][4], 4-byte aligned */
    const int32_t *bias;             /* [O], the input offset folded in */
    edgeq_channel_requant requant;
    int32_t output_offset;           /* output zero point */
} edgeq_conv2d_c1_params;

void edgeq_conv2d_c1_s8(const edgeq_conv2d_c1_params *p, const int8_t *input, int8_t *output,
                        int8_t *scratch);

/* 16x8 2-D convolution (regular or grouped): int16 input [H][W][C], int8 weights OHWI with
 * I = C / groups, int16 output [OH][OW][O]; int64 acc = bias + sum w * x over the taps inside
 * the input (zero points are 0), requantized by edgeq_requantize_s16. */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t output_channels;
    int32_t groups;
    const int8_t *weights;
    const int64_t *bias;             /* [O] */
    edgeq_channel_requant requant;
} edgeq_conv2d_s16_params;

void edgeq_conv2d_s16(const edgeq_conv2d_s16_params *p, const int16_t *input,
                      int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_CONV2D_H */
