/* edgeq kernels: max and average pooling, int8 and int16. */
#ifndef EDGEQ_POOL2D_H
#define EDGEQ_POOL2D_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Max / average pooling over [H][W][C]; windows are clipped to the input (padding and
 * ceil-mode overhang are ignored: max over valid taps, average over the valid count,
 * rounded half away from zero).  Output quantization equals the input's. */
typedef struct {
    edgeq_pool_window window;
    int32_t act_min, act_max;
} edgeq_pool2d_params;

/* Traversal contract (edgeq's memory plan overlaps output and input on it; edgeq/ops/traversal.py):
 * output pixels in raster order; no read for a pixel after a write of a later pixel.  Hence
 * no restrict on the pointers: the output may overlap the input it has consumed. */
void edgeq_max_pool2d_s8(const edgeq_pool2d_params *p, const int8_t *input, int8_t *output);
void edgeq_avg_pool2d_s8(const edgeq_pool2d_params *p, const int8_t *input, int8_t *output);
/* The same on int16 (16x8 mode); the average's int32 sum needs windows of < 65536 taps. */
void edgeq_max_pool2d_s16(const edgeq_pool2d_params *p, const int16_t *input,
                          int16_t *output);
void edgeq_avg_pool2d_s16(const edgeq_pool2d_params *p, const int16_t *input,
                          int16_t *output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_POOL2D_H */
