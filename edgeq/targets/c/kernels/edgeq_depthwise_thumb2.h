/*
 * edgeq kernel support: the hand-scheduled Thumb-2 functions of the 3 x 3 depthwise kernel
 * (edgeq_depthwise_conv2d_thumb2.c), for Cortex-M cores with the DSP extension
 * (EDGEQ_THUMB2_DSP); edgeq_depthwise_conv2d_3x3_s8.c holds their C models (run3x3,
 * border3x3), which the other builds run.  Fast requantization, no clamp.  Argument
 * structs: the functions read their fields at the byte offsets noted.  EDGEQ_DW_TAP: one
 * tap of four channels in C, shared by the depthwise kernels' DSP paths.
 */
#ifndef EDGEQ_DEPTHWISE_THUMB2_H
#define EDGEQ_DEPTHWISE_THUMB2_H

#include <stdint.h>
#include "edgeq_dsp.h"

/* Channel groups of `pixels` output pixels of a row whose windows lie inside the input. */
typedef struct {
    const int8_t *x;                 /*  0: first tap of the first pixel */
    const int8_t *w;                 /*  4: weights (edgeq_depthwise_conv2d.h) */
    const int32_t *bias;             /*  8 */
    const int32_t *multiplier;       /* 12 */
    const int8_t *shift;             /* 16 */
    int8_t *out;                     /* 20 */
    int32_t col, row;                /* 24, 28 */
    int32_t x_gap;                   /* 32: step - 4 * groups */
    int32_t groups;                  /* 36: >= 1 */
    int32_t pixels;                  /* 40: >= 1 */
    int32_t offset2;                 /* 44: 2 * output_offset + 1 */
    int32_t out_gap;                 /* 48: C - 4 * groups */
} edgeq_dw_run3x3_args;

/* Channel groups of one output pixel whose window crosses the border of the input. */
typedef struct {
    const int8_t *input;             /*  0 */
    const int8_t *w;                 /*  4: weights (edgeq_depthwise_conv2d.h) */
    const int32_t *bias;             /*  8 */
    const int32_t *multiplier;       /* 12 */
    const int8_t *shift;             /* 16 */
    int8_t *out;                     /* 20 */
    int32_t col, row;                /* 24, 28 */
    int32_t at;                      /* 32: offset of tap (0, 0) from input, may be < 0 */
    int32_t groups;                  /* 36: >= 1 */
    int32_t pad;                     /* 40: the pad value in 4 bytes */
    int32_t offset2;                 /* 44 */
    int32_t inside[3];               /* 48: per kernel row, bits 31, 30, 29 = kx 0, 1, 2 inside */
} edgeq_dw_border3x3_args;

#if EDGEQ_DSP
/* One tap of four channels into the accumulators a0..a3: input word v, weight word w. */
#define EDGEQ_DW_TAP(v, w)                                                                  \
    {                                                                                       \
        const uint32_t v_ = (v), w_ = (w);                                                  \
        const int32_t ve = edgeq_sxtb16(v_), vo = edgeq_sxtb16_ror8(v_);                    \
        const int32_t we = edgeq_sxtb16(w_), wo = edgeq_sxtb16_ror8(w_);                    \
        a0 = edgeq_smlabb(ve, we, a0);                                                      \
        a2 = edgeq_smlatt(ve, we, a2);                                                      \
        a1 = edgeq_smlabb(vo, wo, a1);                                                      \
        a3 = edgeq_smlatt(vo, wo, a3);                                                      \
    }
#endif

#if EDGEQ_THUMB2_DSP
void edgeq_depthwise_run3x3_s8(const edgeq_dw_run3x3_args *a);
void edgeq_depthwise_border3x3_s8(const edgeq_dw_border3x3_args *a);
#endif

#endif /* EDGEQ_DEPTHWISE_THUMB2_H */
