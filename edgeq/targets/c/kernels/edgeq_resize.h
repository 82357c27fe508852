/* edgeq kernels: nearest-neighbour and bilinear resize, int8. */
#ifndef EDGEQ_RESIZE_H
#define EDGEQ_RESIZE_H

#include "edgeq_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nearest-neighbour resize of [H][W][C]: output pixel (y, x) is input pixel (rows[y],
 * cols[x]); the source indices are torch's, computed by edgeq. */
typedef struct {
    int32_t input_width, channels;
    int32_t output_height, output_width;
    const int16_t *rows;             /* [output_height] */
    const int16_t *cols;             /* [output_width] */
} edgeq_resize_nearest_params;

void edgeq_resize_nearest_s8(const edgeq_resize_nearest_params *p, const int8_t *input,
                             int8_t *EDGEQ_RESTRICT output);

/* Bilinear resize of [H][W][C] with TFLite's integer source positions (computed by edgeq):
 * per output row its lower and upper source rows and the position's fraction above the lower
 * row in 1/1024 (negative where a half-pixel position lies before row 0); likewise per column.
 * Output quantization equals the input's. */
typedef struct {
    int32_t input_width, channels;
    int32_t output_height, output_width;
    const int16_t *row_lower, *row_upper, *row_fraction;    /* [output_height] */
    const int16_t *col_lower, *col_upper, *col_fraction;    /* [output_width] */
} edgeq_resize_bilinear_params;

void edgeq_resize_bilinear_s8(const edgeq_resize_bilinear_params *p, const int8_t *input,
                              int8_t *EDGEQ_RESTRICT output);

#ifdef __cplusplus
}
#endif

#endif /* EDGEQ_RESIZE_H */
