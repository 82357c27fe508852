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


def _trunc_div(a: np.ndarray, divisor: int) -> np.ndarray:
    """Integer division rounding toward zero (C semantics) for int64 arrays."""
    q = np.abs(a) // divisor
    return np.where(a < 0, -q, q)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to the int32 range (what C's int32 does)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    ab = a * b  # |a*b| <= 2^62: fits in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div(ab + nudge, 1 << 31)
    return np.where(overflow, INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("rounding_divide_by_pot exponent must be in [0, 31]")
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """x * M * 2^(shift-31) with TFLite's double rounding; ``shift`` > 0 shifts left first."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


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
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_zero_point
    return np.clip(out, act_min, act_max)


def saturate(x: np.ndarray, dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.asarray(x, dtype=np.int64), info.min, info.max).astype(dtype)
