/* edgeq kernels: transposed 2-D convolution, int8. */
#ifndef EDGEQ_CONV_TRANSPOSE2D_H
#define EDGEQ_CONV_TRANSPOSE2D_H

#include "edgeq_conv2d.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Transposed 2-D convolution (torch ConvTranspose2d, TFLite TRANSPOSE_CONV) with a
 * convolution's parameters: input [H][W][C], filters OHWI with I = C / groups, output
 * [OH][OW][O]; output (oy, ox) takes input (iy, ix) through tap (ky, kx) where
 * oy + pad_top = iy * stride_height + ky * dilation_height (and likewise for x). */
void edgeq_conv_transpose2d_s8(const edgeq_conv2d_params *p, const int8_t *input,
                               int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_CONV_TRANSPOSE2D_H */
