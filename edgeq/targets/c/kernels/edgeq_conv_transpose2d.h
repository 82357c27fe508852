/* edgeq kernels: transposed 2-D convolution, int8. */
#ifndef EDGEQ_CONV_TRANSPOSE2D_H
#define EDGEQ_CONV_TRANSPOSE2D_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Transposed 2-D convolution (torch ConvTranspose2d, TFLite TRANSPOSE_CONV).  input [H][W][C],
 * filters OHWI with I = C / groups, output [OH][OW][O]; output (oy, ox) takes input (iy, ix)
 * through tap (ky, kx) where oy + pad_top = iy * stride_height + ky * dilation_height (and
 * likewise for x). */
typedef struct {
    edgeq_conv_geometry geometry;
    int32_t output_channels;
    int32_t groups;
    int32_t input_offset;            /* -(input zero point) */
    int32_t output_offset;           /* output zero point */
    const int8_t *weights;
    const int32_t *bias;             /* [O] */
    edgeq_channel_requant requant;
} edgeq_conv_transpose2d_params;

void edgeq_conv_transpose2d_s8(const edgeq_conv_transpose2d_params *p, const int8_t *input,
                               int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_CONV_TRANSPOSE2D_H */
