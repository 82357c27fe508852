/*
 * edgeq integer kernels: the Arm DSP extension (Cortex-M4, M7, M33...: ARMv7E-M / ARMv8-M
 * with DSP), as the kernels use it.  EDGEQ_DSP is 1 when the compiler targets a core that has
 * it (__ARM_FEATURE_DSP, ACLE): the kernels then take their SIMD paths, built from the
 * functions below.  Otherwise EDGEQ_DSP is 0 and the kernels take their portable C paths, which
 * compute the same integers.
 *
 * Defining EDGEQ_EMULATE_DSP on a compiler without the extension (the host gcc) selects the
 * SIMD paths with plain-C models of the instructions: the tests use it to check those paths
 * bit for bit on the host as well as under QEMU.
 *
 *   edgeq_sxtb16(x)         SXTB16: bytes 0 and 2 of x, sign-extended, as two int16 halves
 *   edgeq_sxtb16_ror8(x)    SXTB16 x, ROR #8: bytes 1 and 3
 *   edgeq_smlad(a, b, acc)  SMLAD: acc + a.lo * b.lo + a.hi * b.hi (int16 halves, wrapping)
 *   edgeq_smlabb / _smlatt  SMLABB / SMLATT: acc + a.lo * b.lo (or a.hi * b.hi)
 *   edgeq_smmlar(a, b, c)   SMMLAR: c + ((a * b + 2^31) >> 32), the rounded high word
 *   edgeq_ssat8(x)          SSAT #8: x clamped to [-128, 127] (also on the portable path)
 *   edgeq_load2_inc(&p, ..) LDRD lo, hi, [p], #8: two aligned words, p advanced past them
 *   edgeq_load32(p)         a 32-bit load from any address (Cortex-M allows unaligned LDR)
 *
 * ACLE (arm_acle.h) has no intrinsic for SXTB16 with a rotation or for SMMLAR, and GCC's __ssat
 * returns an unsigned int (a sign-conversion warning); those three (and LDRD, which GCC seldom
 * forms from two loads) are a single instruction of inline assembly.
 */
#ifndef EDGEQ_DSP_H
#define EDGEQ_DSP_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define EDGEQ_DSP 1
#include <arm_acle.h>

static inline int32_t edgeq_sxtb16(uint32_t x)
{
    return (int32_t)__sxtb16((int32_t)x);
}

static inline int32_t edgeq_sxtb16_ror8(uint32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t edgeq_smlad(int32_t a, int32_t b, int32_t acc)
{
    return __smlad(a, b, acc);
}

static inline int32_t edgeq_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return __smlabb(a, b, acc);
}

static inline int32_t edgeq_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return __smlatt(a, b, acc);
}

static inline int32_t edgeq_smmlar(int32_t a, int32_t b, int32_t c)
{
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
}

static inline int32_t edgeq_ssat8(int32_t x)
{
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
    return r;
}

/* LDRD with post-increment: the two words at *p (4-byte aligned, read-only data), p += 2.
 * GCC seldom pairs two word loads by itself. */
static inline void edgeq_load2_inc(const uint32_t **p, uint32_t *lo, uint32_t *hi)
{
    uint32_t a, b;
    __asm__("ldrd %0, %1, [%2], #8" : "=&r"(a), "=&r"(b), "+r"(*p));
    *lo = a;
    *hi = b;
}

#elif defined(EDGEQ_EMULATE_DSP)
#define EDGEQ_DSP 1

static inline int32_t edgeq_half(int32_t x, int hi)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)x >> (hi ? 16 : 0));
}

static inline int32_t edgeq_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

static inline int32_t edgeq_sxtb16(uint32_t x)
{
    return edgeq_pack16((int8_t)(uint8_t)x, (int8_t)(uint8_t)(x >> 16));
}

static inline int32_t edgeq_sxtb16_ror8(uint32_t x)
{
    return edgeq_pack16((int8_t)(uint8_t)(x >> 8), (int8_t)(uint8_t)(x >> 24));
}

static inline int32_t edgeq_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(edgeq_half(a, 0) * edgeq_half(b, 0))
                     + (uint32_t)(edgeq_half(a, 1) * edgeq_half(b, 1)));
}

static inline int32_t edgeq_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(edgeq_half(a, 0) * edgeq_half(b, 0)));
}

static inline int32_t edgeq_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(edgeq_half(a, 1) * edgeq_half(b, 1)));
}

static inline int32_t edgeq_smmlar(int32_t a, int32_t b, int32_t c)
{
    const int64_t high = ((int64_t)a * b + ((int64_t)1 << 31)) >> 32;
    return (int32_t)((uint32_t)c + (uint32_t)high);
}

static inline int32_t edgeq_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}

static inline void edgeq_load2_inc(const uint32_t **p, uint32_t *lo, uint32_t *hi)
{
    *lo = (*p)[0];
    *hi = (*p)[1];
    *p += 2;
}

#else
#define EDGEQ_DSP 0

static inline int32_t edgeq_ssat8(int32_t x)
{
    return x < -128 ? -128 : (x > 127 ? 127 : x);
}
#endif

/* EDGEQ_THUMB2_DSP: a Thumb-2 core with the DSP extension (not the host's emulation): the
 * kernels' hand-scheduled Thumb-2 functions replace their C models. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__)
#define EDGEQ_THUMB2_DSP 1
#else
#define EDGEQ_THUMB2_DSP 0
#endif

static inline uint32_t edgeq_load32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif /* EDGEQ_DSP_H */
