"""Fixed-point integer math shared by the reference interpreter and mirrored by the C kernels.

These follow the semantics of TFLite / TFLite Micro reference kernels (gemmlowp "double
rounding"), so that our integer reference is bit-exact with them:

* ``quantize_multiplier``: real multiplier -> (Q31 significand, power-of-two exponent).
* ``saturating_rounding_doubling_high_mul``: (a * b * 2) >> 32 with round-half-up-ish nudge,
  saturating only INT32_MIN * INT32_MIN.
* ``rounding_divide_by_pot``: arithmetic shift right rounding half away from zero.
* ``multiply_by_quantized_multiplier``: the requantization step used by conv, FC, add, ...

All array functions take and return int64 numpy arrays holding int32 values; they never use
floating point. ``quantize_multiplier`` is the one place a float (the real scale ratio,
computed in double from float32 scales, exactly as the runtimes do) turns into integers.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(x):  # noqa: ANN001, ANN201 - a float gives an int, an array a float64 array
    """C's std::round / TfLiteRound: to nearest, ties away from zero. A Python (or numpy scalar)
    float gives an int; an array gives a float64 array of whole numbers."""
    if not isinstance(x, np.ndarray):
        return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))
    x = x.astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """Encode ``real_multiplier`` as (M, shift) with real ~= M * 2^(shift - 31), M in [2^30, 2^31).

    Mirrors TFLite's QuantizeMultiplier: frexp, round the significand to Q31, renormalise when
    it rounds up to 2^31, flush exponents below -31 to a zero multiplier.
    """
    if real_multiplier < 0:
        raise ValueError(f"negative multiplier {real_multiplier}")
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return int(q_fixed), int(shift)


#: float64 holds every integer below 2^53 exactly, so an integer convolution or matrix product
#: computed in float64 (im2col and BLAS: multiplications and additions of integers only) is
#: exact in any order of its sums while every partial sum stays below 2^53 in magnitude. A bound
#: on all of them: K * max|x - zp| * max|w| (K terms per output). int8: 255 * 127 * K < 2^53 for
#: any K below 2^38; 16x8 (int16 input, zp 0): 32768 * 127 * K for K below 2^31.
EXACT_FLOAT64 = 2**53
#: the int8 kernels accumulate in int32: below this bound no sum wraps, so float64 equals them
INT32_LIMIT = 2**31 - 1
#: the same argument for float32 (24-bit significand): exact while K * max|x - zp| * max|w| <
#: 2^24 (int8: K up to 518, every depthwise 3x3 / 5x5). torch's float32 CPU convolution and
#: matmul only multiply and add (direct / im2col + GEMM, no Winograd or FFT on CPU, strict
#: float32 math by default), and are 2-5x faster than float64 on one thread.
EXACT_FLOAT32 = 2**24


def exact_float_type(bound: int, limit: int) -> type | None:
    """The float type whose sums equal the kernel's integer sums when every partial sum is at
    most ``bound`` in magnitude and the kernel's accumulator holds values below ``limit``
    (INT32_LIMIT, or EXACT_FLOAT64 for the 16x8 kernels' int64); None: neither is exact."""
    if bound < min(EXACT_FLOAT32, limit):
        return np.float32
    if bound < min(EXACT_FLOAT64, limit):
        return np.float64
    return None


def max_abs_offset(dtype: np.dtype | str, zero_point: int) -> int:
    """max |q - zero_point| over every value q of the integer type (zero padding adds 0)."""
    info = np.iinfo(dtype)
    return max(abs(int(info.min) - zero_point), abs(int(info.max) - zero_point))


def _trunc_div(a: np.ndarray, divisor: int) -> np.ndarray:
    """Integer division rounding toward zero (C semantics) for int64 arrays."""
    q = np.abs(a) // divisor
    return np.where(a < 0, -q, q)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to the int32 range (what C's int32 does): numpy's
    int64 -> int32 cast keeps the low 32 bits."""
    return np.asarray(x, dtype=np.int64).astype(np.int32).astype(np.int64)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul of int32 values: trunc((a*b + nudge) / 2^31)
    with nudge 2^30 for a*b >= 0 and 1 - 2^30 below. Both cases are one floor shift,
    (a*b + 2^30) >> 31: for a*b < 0 truncation is the ceiling, floor((v + 2^31 - 1) / 2^31),
    and (1 - 2^30) + (2^31 - 1) = 2^30."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b  # |a*b| <= 2^62: fits in int64
    ab += 1 << 30
    ab >>= 31
    if np.any(b == INT32_MIN):
        ab = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, ab)
    return ab


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties away from zero (gemmlowp's RoundingDivideByPOT:
    (x >> e) + (remainder > mask/2 + (x < 0))), computed as (x + 2^(e-1) - (x < 0)) >> e for
    e > 0 (and x itself for e = 0)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("rounding_divide_by_pot exponent must be in [0, 31]")
    half = (np.int64(1) << exponent) >> 1
    out = x + half
    negative = x >> 63                      # -1 where x < 0
    if np.all(exponent > 0):
        out += negative
    else:
        out += negative * (exponent > 0)
    out >>= exponent
    return out


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """x * M * 2^(shift-31) with TFLite's double rounding; ``shift`` > 0 shifts left first."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x << left if np.any(left) else x)
    if shifted.shape != np.broadcast_shapes(shifted.shape, multiplier.shape, right.shape) or \
            np.any(multiplier == INT32_MIN) or np.any(right > 31):
        return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)
    # the same two steps on the fresh array ``shifted``, in place (half the passes and no
    # temporaries: the kernels' requantization is most of the integer reference's time)
    shifted *= multiplier
    shifted += 1 << 30
    shifted >>= 31                           # saturating_rounding_doubling_high_mul
    negative = shifted >> 63
    if not np.all(right > 0):
        negative *= right > 0
    shifted += negative
    shifted += (np.int64(1) << right) >> 1
    shifted >>= right                        # rounding_divide_by_pot
    return shifted


def multiply_by_quantized_multiplier_int64(x: np.ndarray, multiplier: np.ndarray | int,
                                           shift: np.ndarray | int) -> np.ndarray:
    """The 16x8 requantization (TFLite's MultiplyByQuantizedMultiplier for an int64 accumulator):
    the Q31 multiplier is rounded to a Q15 one, then one rounding shift, ties toward +inf.

    ``x`` is an int64 accumulator in [-2^47, 2^47); the result is wrapped to int32 like C's cast."""
    x = np.asarray(x, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - shift
    return wrap_int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def requantize_int64(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int,
                     act_min: int, act_max: int) -> np.ndarray:
    """int64 accumulator -> clamped int16 outputs (16x8 conv/FC; int16 zero points are 0)."""
    return np.clip(multiply_by_quantized_multiplier_int64(acc, multiplier, shift), act_min, act_max)


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int,
               output_zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    """Accumulator -> clamped output integers: the tail shared by conv, FC and friends."""
    out = multiply_by_quantized_multiplier(acc, multiplier, shift)
    out += output_zero_point
    return np.clip(out, act_min, act_max, out=out)


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.asarray(x, dtype=np.int64), info.min, info.max).astype(dtype)
