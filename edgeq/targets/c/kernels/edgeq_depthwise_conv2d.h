/* edgeq kernels: depthwise 2-D convolution, int8 and 16x8. */
#ifndef EDGEQ_DEPTHWISE_CONV2D_H
#define EDGEQ_DEPTHWISE_CONV2D_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Depthwise 2-D convolution: output channel c * depth_multiplier + m reads input channel c.
 * weights 1HWO (O = C * depth_multiplier). */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t depth_multiplier;
    int32_t input_offset;            /* -(input zero point) */
    int32_t output_offset;           /* output zero point */
    const int8_t *weights;
    const int32_t *bias;             /* [O] */
    edgeq_channel_requant requant;
} edgeq_depthwise_conv2d_params;

/* Traversal contract (edgeq's memory plan overlaps output and input on it; edgeq/ops/traversal.py):
 * output pixels in raster order; no read for a pixel after a write of a later pixel.  Hence
 * no restrict on the pointers: the output may overlap the input it has consumed. */
void edgeq_depthwise_conv2d_s8(const edgeq_depthwise_conv2d_params *p, const int8_t *input,
                               int8_t *output);

/* Depthwise 2-D convolution with depth multiplier 1, the input offset folded into the biases
 * (bias[c] + input_offset * sum of channel c's weights): taps in the padding read pad_value
 * (the input zero point).  Weights in the kernel's reading order: for each group of four
 * channels (C rounded down to a multiple of 4), its taps (kernel row-major) of 4 weights each;
 * then the remaining C % 4 channels as [taps][C % 4].  DSP path: four channels at a time for
 * kernels of up to EDGEQ_DEPTHWISE_MAX_TAPS taps.  Output written pixel by pixel, channels in
 * order: increasing addresses (the kernel file states the traversal). */
#define EDGEQ_DEPTHWISE_MAX_TAPS 25

typedef struct {
    edgeq_conv_geometry geometry;
    int32_t pad_value;               /* input zero point */
    int32_t output_offset;           /* output zero point */
    const int8_t *weights;           /* 1HWO reordered: [C / 4][taps][4], then [taps][C % 4] */
    const int32_t *bias;             /* [C], the input offset folded in */
    edgeq_channel_requant requant;
    int32_t fast_requant;            /* edgeq_requantize_fast() is exact (edgeq_matmul_s8) */
} edgeq_depthwise_conv2d_opt_params;

void edgeq_depthwise_conv2d_opt_s8(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input,
                                   int8_t *output);

/* The same for a 3 x 3 window, C % 4 == 0, fast_requant set and no clamp (act_min = -128,
 * act_max = 127): the lowering's choice for such layers, with the same parameters. */
void edgeq_depthwise_conv2d_3x3_s8(const edgeq_depthwise_conv2d_opt_params *p, const int8_t *input,
                                   int8_t *output);

/* 16x8 depthwise 2-D convolution: int16 input and output, int8 weights 1HWO, int64 biases. */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t depth_multiplier;
    const int8_t *weights;
    const int64_t *bias;             /* [O] */
    edgeq_channel_requant requant;
} edgeq_depthwise_conv2d_s16_params;

void edgeq_depthwise_conv2d_s16(const edgeq_depthwise_conv2d_s16_params *p, const int16_t *input,
                                int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_DEPTHWISE_CONV2D_H */
