/*
 * edgeq kernel support: the int8 matrix-product core of the 1x1 and im2col convolutions
 * (edgeq_matmul.h): two output channels by one or two columns at a time.
 *
 * Traversal (a guarantee other code relies on: keep it): output channels in increasing pairs;
 * for each pair, channel o then o + 1 of column 0, then of column 1 (out + out_stride); on the
 * DSP path with an odd channel count or a clamp, every pair of column 0, then of column 1
 * (the DSP path's columns are in the scratch: no write meets a read).  With one column the
 * writes are at increasing addresses.
 */
#include "edgeq_matmul.h"

/* The layer's output stage, in locals: stores through int8_t pointers may alias anything, so
 * the loops never reread the parameter struct. */
typedef struct {
    const int32_t *bias;
    const int32_t *multiplier;
    const int8_t *shift;
    int32_t channels, offset2, act_min, act_max;
} stage;

static inline int32_t clamp(int32_t y, int32_t lo, int32_t hi)
{
    return y < lo ? lo : (y > hi ? hi : y);
}

#if EDGEQ_DSP

#if EDGEQ_THUMB2_DSP
/* Whole channel pairs of two columns, fast requantization, no clamp: 2 x 2 (channel, column)
 * accumulators per block and the output stage as one Thumb-2 function (GCC spilled the
 * pointers and the output stage's state of the C form, ~70 instructions a pair besides the products; here the products use
 * r0-r12, the output pointer stays in lr, the rest lives in an 8-word frame).  The same
 * instructions per output as edgeq_requantize_fast + SSAT; writes channel o, o + 1 of column
 * 0, then of column 1. */
typedef struct {
    const uint32_t *w;               /*  0: the first pair's weights */
    const uint32_t *cols;            /*  4 */
    const uint32_t *x_end;           /*  8: cols + 4 * groups words */
    int32_t odd;                     /* 12: groups & 1 */
    const int32_t *bias;             /* 16 */
    const int32_t *multiplier;       /* 20 */
    const int8_t *shift;             /* 24 */
    int8_t *out;                     /* 28: column 0; column 1 at out + out_stride */
    int32_t out_stride;              /* 32 */
    int32_t pairs;                   /* 36: >= 1 */
    uint32_t offset2;                /* 40: 2 * output_offset + 1 */
} pairs2_args;

void edgeq_matmul_pairs2_s8(const pairs2_args *a);

#define EDGEQ_MM_FN_GROUP                                                                   \
    "ldrd r7, r8, [r4], #8\n\t"                                                             \
    "ldrd r11, r12, [r5], #8\n\t"                                                           \
    "sxtb16 r9, r7\n\t"                                                                     \
    "sxtb16 r10, r8\n\t"                                                                    \
    "sxtb16 r7, r7, ror #8\n\t"                                                             \
    "sxtb16 r8, r8, ror #8\n\t"                                                             \
    "smlad r0, r9, r11, r0\n\t"                                                             \
    "smlad r0, r7, r12, r0\n\t"                                                             \
    "smlad r2, r10, r11, r2\n\t"                                                            \
    "smlad r2, r8, r12, r2\n\t"                                                             \
    "ldrd r11, r12, [r5], #8\n\t"                                                           \
    "smlad r1, r9, r11, r1\n\t"                                                             \
    "smlad r1, r7, r12, r1\n\t"                                                             \
    "smlad r3, r10, r11, r3\n\t"                                                            \
    "smlad r3, r8, r12, r3\n\t"
/* accumulator a -> int8 in a: multiplier m, rounding r, right shift e */
#define EDGEQ_MM_FN_OUT(a, m, r, e)                                                         \
    "lsl r5, " a ", #1\n\t"                                                                 \
    "smmlar r5, r5, " m ", " r "\n\t"                                                       \
    "sub r5, r5, " a ", lsr #31\n\t"                                                        \
    "asr r5, r5, " e "\n\t"                                                                 \
    "ssat " a ", #8, r5\n\t"

__asm__(".pushsection .text.edgeq_matmul_pairs2_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".p2align 2\n\t"
        ".global edgeq_matmul_pairs2_s8\n\t"
        ".thumb\n\t"
        ".thumb_func\n\t"
        ".type edgeq_matmul_pairs2_s8, %function\n"
        "edgeq_matmul_pairs2_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #32\n\t"
        "ldr r1, [r0, #16]\n\tstr r1, [sp, #0]\n\t"      /* bias */
        "ldr r1, [r0, #20]\n\tstr r1, [sp, #4]\n\t"      /* multiplier */
        "ldr r1, [r0, #24]\n\tstr r1, [sp, #8]\n\t"      /* shift */
        "ldr r1, [r0, #32]\n\tstr r1, [sp, #12]\n\t"     /* out_stride */
        "ldr r1, [r0, #40]\n\tstr r1, [sp, #16]\n\t"     /* offset2 */
        "ldr r1, [r0, #36]\n\tstr r1, [sp, #20]\n\t"     /* pairs left */
        "ldr r1, [r0, #4]\n\tstr r1, [sp, #24]\n\t"      /* cols */
        "ldr r1, [r0, #12]\n\tstr r1, [sp, #28]\n\t"     /* odd */
        "ldr r4, [r0, #0]\n\t"                           /* w */
        "ldr r6, [r0, #8]\n\t"                           /* x_end */
        "ldr lr, [r0, #28]\n"                            /* out */
        "3:\n\t"
        "ldr r5, [sp, #0]\n\t"
        "ldrd r0, r2, [r5], #8\n\t"                      /* a00 = a01 = bias[o], a10 = a11 = bias[o + 1] */
        "str r5, [sp, #0]\n\t"
        "mov r1, r0\n\t"
        "mov r3, r2\n\t"
        "ldr r5, [sp, #24]\n\t"
        "ldr r7, [sp, #28]\n\t"
        "cbz r7, 1f\n\t"
        EDGEQ_MM_FN_GROUP
        "cmp r5, r6\n\t"
        "beq 2f\n"
        "1:\n\t"
        EDGEQ_MM_FN_GROUP
        EDGEQ_MM_FN_GROUP
        "cmp r5, r6\n\t"
        "bne 1b\n"
        "2:\n\t"
        "ldr r5, [sp, #8]\n\t"
        "ldrsb r7, [r5], #1\n\t"
        "ldrsb r8, [r5], #1\n\t"
        "str r5, [sp, #8]\n\t"
        "ldr r5, [sp, #4]\n\t"
        "ldr r9, [r5], #4\n\t"
        "ldr r10, [r5], #4\n\t"
        "str r5, [sp, #4]\n\t"
        "ldr r5, [sp, #16]\n\t"
        "mvn r11, r7\n\t"                                /* e - 1 = -shift - 1 */
        "lsl r11, r5, r11\n\t"
        "mvn r12, r8\n\t"
        "lsl r12, r5, r12\n\t"
        "rsb r7, r7, #0\n\t"
        "rsb r8, r8, #0\n\t"
        EDGEQ_MM_FN_OUT("r0", "r9", "r11", "r7")
        EDGEQ_MM_FN_OUT("r1", "r9", "r11", "r7")
        EDGEQ_MM_FN_OUT("r2", "r10", "r12", "r8")
        EDGEQ_MM_FN_OUT("r3", "r10", "r12", "r8")
        "ldr r5, [sp, #12]\n\t"
        "strb r0, [lr]\n\t"
        "strb r2, [lr, #1]\n\t"
        "strb r1, [lr, r5]\n\t"
        "add lr, lr, #1\n\t"
        "strb r3, [lr, r5]\n\t"
        "add lr, lr, #1\n\t"
        "ldr r5, [sp, #20]\n\t"
        "subs r5, r5, #1\n\t"
        "str r5, [sp, #20]\n\t"
        "bne 3b\n\t"
        "add sp, sp, #32\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size edgeq_matmul_pairs2_s8, .-edgeq_matmul_pairs2_s8\n\t"
        ".popsection");
#define EDGEQ_MM_PAIRS2_FN 1
#else
#define EDGEQ_MM_PAIRS2_FN 0
#endif

/* One column, fast requantization: its group g at cols + g * step words (step 2 for one
 * column, 4 for either of two interleaved ones).  Two columns with an odd channel count or a
 * clamp take it once per column: no zoo layer needs them, and a second 2 x 2 loop in C cost
 * 600 bytes of flash in every model with a 1x1 or im2col layer. */
static EDGEQ_NOINLINE void cols1_fast(const stage *st, const uint32_t *w, int32_t groups,
                                      const uint32_t *cols, int32_t step, int8_t *out)
{
    const int32_t *bias = st->bias;
    const int32_t *multiplier = st->multiplier;
    const int8_t *shift = st->shift;
    const int32_t n = st->channels;
    const uint32_t offset2 = (uint32_t)st->offset2;
    const int32_t lo = st->act_min, hi = st->act_max;
    int32_t o;

    for (o = 0; o < n; o += 2) {
        const int32_t o1 = o + 1 < n ? o + 1 : o;
        const uint32_t *x = cols;
        const uint32_t *end = w + 2 * groups;
        int32_t a0 = bias[o], a1 = bias[o1];
        int32_t e0, e1;
        do {
            const uint32_t w0 = w[0], w1 = w[1];
            const int32_t xe = (int32_t)x[0], xo = (int32_t)x[1];
            a0 = edgeq_smlad(edgeq_sxtb16(w0), xe, a0);
            a0 = edgeq_smlad(edgeq_sxtb16_ror8(w0), xo, a0);
            a1 = edgeq_smlad(edgeq_sxtb16(w1), xe, a1);
            a1 = edgeq_smlad(edgeq_sxtb16_ror8(w1), xo, a1);
            w += 2;
            x += step;
        } while (w != end);
        e0 = -shift[o];
        e1 = -shift[o1];
        out[o] = (int8_t)clamp(edgeq_requantize_fast(a0, multiplier[o], e0, (int32_t)(offset2 << (e0 - 1))),
                               lo, hi);
        if (o1 != o) {
            out[o1] = (int8_t)clamp(edgeq_requantize_fast(a1, multiplier[o1], e1,
                                                          (int32_t)(offset2 << (e1 - 1))), lo, hi);
        }
    }
}

void edgeq_matmul_cols_s8(const edgeq_matmul_s8 *m, const void *cols, int32_t columns,
                          int32_t col_stride, int32_t out_stride, int8_t *out)
{
    stage st;
    int32_t q;
    (void)col_stride;     /* the DSP path's columns interleave */
#if EDGEQ_MM_PAIRS2_FN
    if (columns == 2 && !(m->channels & 1) && m->requant.act_min == EDGEQ_INT8_MIN
        && m->requant.act_max == EDGEQ_INT8_MAX) {     /* the common case, straight to the loop */
        const int32_t groups = edgeq_matmul_depth4(m->depth) >> 2;
        pairs2_args a;
        a.w = (const uint32_t *)(const void *)m->weights;
        a.cols = (const uint32_t *)cols;
        a.x_end = a.cols + 4 * groups;
        a.odd = groups & 1;
        a.bias = m->bias;
        a.multiplier = m->requant.multiplier;
        a.shift = m->requant.shift;
        a.out = out;
        a.out_stride = out_stride;
        a.pairs = m->channels >> 1;
        a.offset2 = (uint32_t)(2 * m->output_offset + 1);
        edgeq_matmul_pairs2_s8(&a);
        return;
    }
#endif
    st.bias = m->bias;
    st.multiplier = m->requant.multiplier;
    st.shift = m->requant.shift;
    st.channels = m->channels;
    st.offset2 = 2 * m->output_offset + 1;
    st.act_min = m->requant.act_min;
    st.act_max = m->requant.act_max;
    for (q = 0; q < columns; ++q) {
        cols1_fast(&st, (const uint32_t *)(const void *)m->weights, edgeq_matmul_depth4(m->depth) >> 2,
                   (const uint32_t *)cols + 2 * q, 2 * columns, out + q * out_stride);
    }
}

#else   /* portable C */

void edgeq_matmul_cols_s8(const edgeq_matmul_s8 *m, const void *cols, int32_t columns,
                          int32_t col_stride, int32_t out_stride, int8_t *out)
{
    const int32_t *bias = m->bias;
    const int32_t *multiplier = m->requant.multiplier;
    const int8_t *shift = m->requant.shift;
    const int32_t n = m->channels;
    const int32_t depth = m->depth;
    const int32_t pair_bytes = 2 * edgeq_matmul_depth4(depth);
    const uint32_t offset2 = (uint32_t)(2 * m->output_offset + 1);
    const int32_t lo = m->requant.act_min, hi = m->requant.act_max;
    const int8_t *x0 = (const int8_t *)cols;
    const int8_t *x1 = x0 + (columns == 2 ? col_stride : 0);
    const int8_t *w = m->weights;
    int8_t *out_b = out + out_stride;
    int32_t o;

    for (o = 0; o < n; o += 2, w += pair_bytes) {
        const int32_t o1 = o + 1 < n ? o + 1 : o;
        int32_t a00 = bias[o], a10 = bias[o1];
        int32_t a01 = a00, a11 = a10;
        int32_t k, e0, e1, r0, r1;
        for (k = 0; k + 4 <= depth; k += 4) {
            const int8_t *wk = w + 2 * k;
            int32_t j;
            for (j = 0; j < 4; ++j) {
                const int32_t w0 = wk[j], w1 = wk[4 + j];
                const int32_t xa = x0[k + j], xb = x1[k + j];
                a00 += w0 * xa;
                a10 += w1 * xa;
                a01 += w0 * xb;
                a11 += w1 * xb;
            }
        }
        for (; k < depth; ++k) {
            const int32_t w0 = w[2 * (k & ~3) + (k & 3)], w1 = w[2 * (k & ~3) + 4 + (k & 3)];
            a00 += w0 * x0[k];
            a10 += w1 * x0[k];
            a01 += w0 * x1[k];
            a11 += w1 * x1[k];
        }
        e0 = -shift[o];
        e1 = -shift[o1];
        r0 = (int32_t)(offset2 << (e0 - 1));
        r1 = (int32_t)(offset2 << (e1 - 1));
        out[o] = (int8_t)clamp(edgeq_requantize_fast(a00, multiplier[o], e0, r0), lo, hi);
        if (o1 != o) {
            out[o1] = (int8_t)clamp(edgeq_requantize_fast(a10, multiplier[o1], e1, r1), lo, hi);
        }
        if (columns == 2) {
            out_b[o] = (int8_t)clamp(edgeq_requantize_fast(a01, multiplier[o], e0, r0), lo, hi);
            if (o1 != o) {
                out_b[o1] = (int8_t)clamp(edgeq_requantize_fast(a11, multiplier[o1], e1, r1), lo, hi);
            }
        }
    }
}

#endif
