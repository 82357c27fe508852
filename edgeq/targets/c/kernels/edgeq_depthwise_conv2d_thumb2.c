/*
 * edgeq kernel support: the 3 x 3 depthwise paths of edgeq_depthwise_conv2d_opt_s8 in Thumb-2
 * (edgeq_depthwise_thumb2.h): the same instructions as their C models in
 * edgeq_depthwise_conv2d_opt_s8.c (EDGEQ_DW_TAP per tap, fast4 per output), with the
 * registers allocated by hand.  Empty on other builds.
 */
#include "edgeq_depthwise_thumb2.h"

#if EDGEQ_THUMB2_DSP
/* run3x3 as one Thumb-2 function: the taps
 * of EDGEQ_DW_INTERIOR_TAPS and, per output, the instructions of fast4 (edgeq_requantize_fast
 * + SSAT).  Around the inline taps GCC spent ~20 instructions a channel group on spilled
 * pointers; here r0-r3 accumulate, r4 = x, r5 = w, r6 = col, r7 = row, r8-r11 are the tap
 * temporaries, lr the output, and the rest lives in a 10-word frame. */
#define EDGEQ_DW_FN_TAP(addr, wofs)                                                         \
    "ldr r8, " addr "\n\t"                                                                  \
    "ldr r9, [r5, #" wofs "]\n\t"                                                           \
    "sxtb16 r10, r8\n\t"                                                                    \
    "sxtb16 r11, r9\n\t"                                                                    \
    "smlabb r0, r10, r11, r0\n\t"                                                           \
    "smlatt r2, r10, r11, r2\n\t"                                                           \
    "sxtb16 r8, r8, ror #8\n\t"                                                             \
    "sxtb16 r9, r9, ror #8\n\t"                                                             \
    "smlabb r1, r8, r9, r1\n\t"                                                             \
    "smlatt r3, r8, r9, r3\n\t"
#define EDGEQ_DW_FN_ROW(w0, w1, w2)                                                         \
    EDGEQ_DW_FN_TAP("[r4]", w0) EDGEQ_DW_FN_TAP("[r4, r6]", w1) EDGEQ_DW_FN_TAP("[r4, r6, lsl #1]", w2)
/* accumulator a -> int8 at lr: shift byte `rot` of r7, multiplier at r6, offset2 in r12 */
#define EDGEQ_DW_FN_OUT(a, rot)                                                             \
    "sxtb r8, r7" rot "\n\t"                                                                \
    "ldr r9, [r6], #4\n\t"                                                                  \
    "mvn r10, r8\n\t"                                                                       \
    "lsl r10, r12, r10\n\t"                                                                 \
    "rsb r8, r8, #0\n\t"                                                                    \
    "lsl r11, " a ", #1\n\t"                                                                \
    "smmlar r11, r11, r9, r10\n\t"                                                          \
    "sub r11, r11, " a ", lsr #31\n\t"                                                      \
    "asr r11, r11, r8\n\t"                                                                  \
    "ssat r11, #8, r11\n\t"                                                                 \
    "strb r11, [lr], #1\n\t"
/* after a group's taps (both functions): back to the next group's first tap and weights, the
 * 4 accumulators (r0-r3) out through the group's 4 shifts and multipliers, loop over groups */
#define EDGEQ_DW_FN_GROUP_DONE                                                              \
    "sub r4, r4, r7, lsl #1\n\t"                                                            \
    "add r4, r4, #4\n\t"                                                                    \
    "add r5, r5, #36\n\t"                                                                   \
    "ldr r6, [sp, #8]\n\t"                                                                  \
    "ldr r7, [r6], #4\n\t"                                                                  \
    "str r6, [sp, #8]\n\t"                                                                  \
    "ldr r6, [sp, #4]\n\t"                                                                  \
    "ldr r12, [sp, #12]\n\t"                                                                \
    EDGEQ_DW_FN_OUT("r0", "")                                                               \
    EDGEQ_DW_FN_OUT("r1", ", ror #8")                                                       \
    EDGEQ_DW_FN_OUT("r2", ", ror #16")                                                      \
    EDGEQ_DW_FN_OUT("r3", ", ror #24")                                                      \
    "str r6, [sp, #4]\n\t"                                                                  \
    "ldrd r6, r7, [sp, #24]\n\t"                                                            \
    "ldr r8, [sp, #16]\n\t"                                                                 \
    "subs r8, r8, #1\n\t"                                                                   \
    "str r8, [sp, #16]\n\t"                                                                 \
    "bne 4b\n\t"

__asm__(".pushsection .text.edgeq_depthwise_run3x3_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".p2align 2\n\t"
        ".global edgeq_depthwise_run3x3_s8\n\t"
        ".thumb\n\t"
        ".thumb_func\n\t"
        ".type edgeq_depthwise_run3x3_s8, %function\n"
        "edgeq_depthwise_run3x3_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #40\n\t"
        "str r0, [sp, #32]\n\t"
        "ldr r1, [r0, #44]\n\tstr r1, [sp, #12]\n\t"     /* offset2 */
        "ldr r1, [r0, #40]\n\tstr r1, [sp, #20]\n\t"     /* pixels left */
        "ldr r6, [r0, #24]\n\tstr r6, [sp, #24]\n\t"     /* col */
        "ldr r7, [r0, #28]\n\tstr r7, [sp, #28]\n\t"     /* row */
        "ldr r4, [r0, #0]\n\t"
        "ldr lr, [r0, #20]\n"
        "5:\n\t"                                         /* a pixel */
        "ldr r0, [sp, #32]\n\t"
        "ldr r5, [r0, #4]\n\t"
        "ldr r1, [r0, #8]\n\tstr r1, [sp, #0]\n\t"       /* bias */
        "ldr r1, [r0, #12]\n\tstr r1, [sp, #4]\n\t"      /* multiplier */
        "ldr r1, [r0, #16]\n\tstr r1, [sp, #8]\n\t"      /* shift */
        "ldr r1, [r0, #36]\n\tstr r1, [sp, #16]\n"       /* groups left */
        "4:\n\t"                                         /* a group of 4 channels */
        "ldr r8, [sp, #0]\n\t"
        "ldrd r0, r1, [r8], #8\n\t"
        "ldrd r2, r3, [r8], #8\n\t"
        "str r8, [sp, #0]\n\t"
        EDGEQ_DW_FN_ROW("0", "4", "8")
        "add r4, r4, r7\n\t"
        EDGEQ_DW_FN_ROW("12", "16", "20")
        "add r4, r4, r7\n\t"
        EDGEQ_DW_FN_ROW("24", "28", "32")
        EDGEQ_DW_FN_GROUP_DONE
        "ldr r0, [sp, #32]\n\t"
        "ldr r8, [r0, #32]\n\t"
        "add r4, r4, r8\n\t"
        "ldr r8, [r0, #48]\n\t"
        "add lr, lr, r8\n\t"
        "ldr r8, [sp, #20]\n\t"
        "subs r8, r8, #1\n\t"
        "str r8, [sp, #20]\n\t"
        "bne 5b\n\t"
        "add sp, sp, #40\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size edgeq_depthwise_run3x3_s8, .-edgeq_depthwise_run3x3_s8\n\t"
        ".popsection");

/* border3x3 as one Thumb-2 function, same registers, an 11-word frame: the taps in the padding take
 * the pad word (r12).  Per kernel row, MSR sets the flags from that row's word of `inside`:
 * N, Z, C = taps kx = 0, 1, 2 lie inside the input, and each tap is an IT block (the load only
 * where the tap is inside: nothing outside the input is read). */
#define EDGEQ_DW_FN_CTAP(addr, wofs, in, out)                                               \
    "ite " in "\n\t"                                                                        \
    "ldr" in " r8, " addr "\n\t"                                                            \
    "mov" out " r8, r12\n\t"                                                                \
    "ldr r9, [r5, #" wofs "]\n\t"                                                           \
    "sxtb16 r10, r8\n\t"                                                                    \
    "sxtb16 r11, r9\n\t"                                                                    \
    "smlabb r0, r10, r11, r0\n\t"                                                           \
    "smlatt r2, r10, r11, r2\n\t"                                                           \
    "sxtb16 r8, r8, ror #8\n\t"                                                             \
    "sxtb16 r9, r9, ror #8\n\t"                                                             \
    "smlabb r1, r8, r9, r1\n\t"                                                             \
    "smlatt r3, r8, r9, r3\n\t"
#define EDGEQ_DW_FN_CROW(inside, w0, w1, w2)                                                \
    "ldr r8, [sp, #" inside "]\n\t"                                                         \
    "msr APSR_nzcvq, r8\n\t"                                                                \
    EDGEQ_DW_FN_CTAP("[r4]", w0, "mi", "pl")                                                \
    EDGEQ_DW_FN_CTAP("[r4, r6]", w1, "eq", "ne")                                            \
    EDGEQ_DW_FN_CTAP("[r4, r6, lsl #1]", w2, "cs", "cc")

__asm__(".pushsection .text.edgeq_depthwise_border3x3_s8,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".p2align 2\n\t"
        ".global edgeq_depthwise_border3x3_s8\n\t"
        ".thumb\n\t"
        ".thumb_func\n\t"
        ".type edgeq_depthwise_border3x3_s8, %function\n"
        "edgeq_depthwise_border3x3_s8:\n\t"
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #44\n\t"
        "ldr r1, [r0, #8]\n\tstr r1, [sp, #0]\n\t"       /* bias */
        "ldr r1, [r0, #12]\n\tstr r1, [sp, #4]\n\t"      /* multiplier */
        "ldr r1, [r0, #16]\n\tstr r1, [sp, #8]\n\t"      /* shift */
        "ldr r1, [r0, #44]\n\tstr r1, [sp, #12]\n\t"     /* offset2 */
        "ldr r1, [r0, #36]\n\tstr r1, [sp, #16]\n\t"     /* groups left */
        "ldr r1, [r0, #40]\n\tstr r1, [sp, #20]\n\t"     /* pad */
        "ldr r6, [r0, #24]\n\tstr r6, [sp, #24]\n\t"     /* col */
        "ldr r7, [r0, #28]\n\tstr r7, [sp, #28]\n\t"     /* row */
        "ldr r1, [r0, #48]\n\tstr r1, [sp, #32]\n\t"     /* inside, kernel rows 0, 1, 2 */
        "ldr r1, [r0, #52]\n\tstr r1, [sp, #36]\n\t"
        "ldr r1, [r0, #56]\n\tstr r1, [sp, #40]\n\t"
        "ldr r4, [r0, #0]\n\t"
        "ldr r2, [r0, #32]\n\t"
        "add r4, r4, r2\n\t"                             /* x = input + at */
        "ldr r5, [r0, #4]\n\t"
        "ldr lr, [r0, #20]\n"
        "4:\n\t"
        "ldr r8, [sp, #0]\n\t"
        "ldrd r0, r1, [r8], #8\n\t"
        "ldrd r2, r3, [r8], #8\n\t"
        "str r8, [sp, #0]\n\t"
        "ldr r12, [sp, #20]\n\t"
        EDGEQ_DW_FN_CROW("32", "0", "4", "8")
        "add r4, r4, r7\n\t"
        EDGEQ_DW_FN_CROW("36", "12", "16", "20")
        "add r4, r4, r7\n\t"
        EDGEQ_DW_FN_CROW("40", "24", "28", "32")
        EDGEQ_DW_FN_GROUP_DONE
        "add sp, sp, #44\n\t"
        "pop {r4-r11, pc}\n\t"
        ".size edgeq_depthwise_border3x3_s8, .-edgeq_depthwise_border3x3_s8\n\t"
        ".popsection");
#endif
