"""Integer algorithms of TFLite's int8 RSQRT, L2_NORMALIZATION, SQUARED_DIFFERENCE and DIV
reference kernels (the kernels TFLite Micro and LiteRT's reference resolver share).

* RSQRT (tflite-micro ``micro/kernels/elementwise.cc``, LiteRT ``kernels/elementwise.cc``):
  ``GetInvSqrtQuantizedMultiplierExp`` of ``x - zp`` (a Newton-Raphson inverse square root in
  gemmlowp fixed point), applied to 1 with a 2^20 gain, then requantized by
  ``M(1 / (sqrtf(s_in) * s_out))``; ``x == zp`` gives the largest output.
* L2_NORMALIZATION (``reference/integer_ops/l2normalization.h``): the int32 sum of squares of
  a row, its inverse square root as above, each ``x - zp`` requantized to 1/128.
* SQUARED_DIFFERENCE (tflite-micro ``squared_difference.cc``, LiteRT
  ``squared_difference.cc``): ADD's input rescaling with a left shift of 7 (0 for int16),
  the difference squared in int32, requantized by ``M((2 max s)^2 / (2^14 s_out))``.
* DIV (``reference/div.h``, ``DivElementwise``): the reciprocal of the denominator by
  ``GetReciprocal``, the numerator normalised by its headroom, one requantization by
  ``M(s1 / (s2 s_out))`` (float32 arithmetic on the scales in both runtimes).

Arrays are int64 holding int32 values, as in :mod:`edgeq.intmath`; C's wrapping int32
arithmetic is wrapped explicitly, gemmlowp's saturating steps saturate the way it does.
"""
from __future__ import annotations

import numpy as np

from .intmath import (INT32_MAX, multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot,
                      saturating_rounding_doubling_high_mul as srdhm, wrap_int32)
from .intmath_softmax import count_leading_zeros_u32, get_reciprocal, saturating_rounding_multiply_by_pot

RSQRT_GAIN_SHIFT = 20          # kShift in RsqrtEvalQuantized: keeps 1/sqrt(v) an integer
L2_OUTPUT_SHIFT = 7            # L2_NORMALIZATION's output is in 1/128 steps
INT8_VALUES = np.arange(-128, 128, dtype=np.int64)
_HALF_THREE_Q3 = (1 << 28) + (1 << 27)   # 1.5 in gemmlowp FixedPoint<int32, 3>
_HALF_SQRT_2_Q0 = 1518500250             # sqrt(2) / 2 in Q0.31


def _i64(x) -> np.ndarray:  # noqa: ANN001
    return np.asarray(x, dtype=np.int64)


def count_leading_sign_bits(x: np.ndarray) -> np.ndarray:
    """TFLite ``CountLeadingSignBits<int32>``: redundant sign bits (31 for 0 and -1)."""
    x = _i64(x)
    pos = count_leading_zeros_u32(np.where(x >= 0, x, 0)) - 1
    neg = count_leading_zeros_u32(np.where(x < 0, 2 * -x - 1, 0))
    return np.where(x == 0, 31, np.where(x > 0, pos, np.where(x == -(1 << 31), 0, neg)))


def inv_sqrt_multiplier_exp(x: np.ndarray, reverse_shift: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``GetInvSqrtQuantizedMultiplierExp``: (M, shift) with M * 2^(shift - 31) ~ 1/sqrt(x)
    for int32 ``x >= 0`` (0 and 1 give (INT32_MAX, 0)); ``reverse_shift = -1`` returns the shift
    as a left shift, as every caller does."""
    x = _i64(x)
    small = x <= 1
    v = np.where(small, 2, x)
    shift = np.full(v.shape, 11, dtype=np.int64)
    while np.any(v >= 1 << 29):
        big = v >= 1 << 29
        v = np.where(big, v // 4, v)
        shift = shift + big
    left_pairs = (count_leading_zeros_u32(v) - 1) // 2 - 1
    shift = shift - left_pairs
    v = v << (2 * left_pairs)
    half_input = rounding_divide_by_pot(v >> 1, 1)                 # F3: input / 2
    y = np.full(v.shape, 1 << 28, dtype=np.int64)                   # F3 one
    for _ in range(5):                                              # Newton-Raphson on 1/sqrt
        y3 = saturating_rounding_multiply_by_pot(srdhm(srdhm(y, y), y), 6)          # F9 -> F3
        y = saturating_rounding_multiply_by_pot(wrap_int32(srdhm(_HALF_THREE_Q3, y) - srdhm(half_input, y3)), 3)
    y = srdhm(y, _HALF_SQRT_2_Q0)
    y = np.where(shift < 0, wrap_int32(y << np.maximum(-shift, 0)), y)
    shift = np.maximum(shift, 0) * reverse_shift
    return np.where(small, INT32_MAX, y), np.where(small, 0, shift)


def rsqrt_multiplier(input_scale: float, output_scale: float) -> tuple[int, int]:
    """RSQRT prepare: QuantizeMultiplier(1 / (sqrtf(s_in) * s_out)), the product in float32."""
    prod = np.sqrt(np.float32(input_scale)) * np.float32(output_scale)
    return quantize_multiplier(1.0 / float(prod))


def rsqrt_int8(x: np.ndarray, input_zero_point: int, multiplier: int, shift: int,
               output_zero_point: int) -> np.ndarray:
    """TFLite's int8 RSQRT of int8 values (``x < zp`` is an error in TFLite: callers clamp)."""
    v = np.maximum(_i64(x) - input_zero_point, 0)
    inv, inv_shift = inv_sqrt_multiplier_exp(v)
    data = multiply_by_quantized_multiplier(np.ones_like(v), inv, inv_shift + RSQRT_GAIN_SHIFT)
    out = multiply_by_quantized_multiplier(data, multiplier, shift - RSQRT_GAIN_SHIFT) + output_zero_point
    return np.where(v == 0, 127, np.clip(out, -128, 127)).astype(np.int8)


def l2_normalize_int8(x: np.ndarray, input_zero_point: int) -> np.ndarray:
    """TFLite's int8 L2_NORMALIZATION over the last axis (output scale 1/128, zero point 0)."""
    v = _i64(x) - input_zero_point
    acc = wrap_int32((v * v).sum(axis=-1, keepdims=True))
    inv, inv_shift = inv_sqrt_multiplier_exp(acc)
    out = multiply_by_quantized_multiplier(v, inv, inv_shift + L2_OUTPUT_SHIFT)
    return np.clip(out, -128, 127).astype(np.int8)


def squared_difference_params(s1: float, s2: float, s_out: float, left_shift: int) -> dict:
    """SQUARED_DIFFERENCE prepare (both runtimes: double from the float32 scales; 2^(2 ls) s_out
    is a float32 product). Raises when the output multiplier is not below one, where LiteRT's
    QuantizeMultiplierSmallerThanOneExp aborts."""
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    real_out = twice_max * twice_max / float(np.float32(1 << (2 * left_shift)) * np.float32(s_out))
    m1, sh1 = quantize_multiplier(float(np.float32(s1)) / twice_max)
    m2, sh2 = quantize_multiplier(float(np.float32(s2)) / twice_max)
    mo, sho = quantize_multiplier(real_out)
    if not real_out < 1.0 or sho > 0:
        raise ValueError(f"squared_difference: output multiplier {real_out} is not below 1")
    return {"input1_multiplier": m1, "input1_shift": sh1, "input2_multiplier": m2, "input2_shift": sh2,
            "output_multiplier": mo, "output_shift": sho, "left_shift": left_shift}


def squared_difference_int(p: dict, x1: np.ndarray, x2: np.ndarray, zp1: int, zp2: int, zp_out: int,
                           lo: int, hi: int) -> np.ndarray:
    """TFLite's quantized SquaredDifference with the parameters of ``squared_difference_params``."""
    def scaled(x: np.ndarray, zp: int, m: int, sh: int) -> np.ndarray:
        return rounding_divide_by_pot(srdhm((_i64(x) - zp) << p["left_shift"], m), -sh)
    diff = scaled(x1, zp1, p["input1_multiplier"], p["input1_shift"]) - \
        scaled(x2, zp2, p["input2_multiplier"], p["input2_shift"])
    out = multiply_by_quantized_multiplier(wrap_int32(diff * diff), p["output_multiplier"], p["output_shift"])
    return np.clip(out + zp_out, lo, hi)


def div_multiplier(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """DIV prepare: QuantizeMultiplier(s1 / (s2 * s_out)) evaluated in float32 (both runtimes)."""
    ratio = np.float32(s1) / (np.float32(s2) * np.float32(s_out))
    return quantize_multiplier(float(ratio))


def div_shift_range(output_shift: int, zp1: int, zp2: int) -> tuple[int, int]:
    """The right shifts DivElementwise applies over all int8 operand pairs, (least, most);
    TFLite's RoundingDivideByPOT is defined for 0..31 only (32 or more is undefined in C:
    x86 builds of both runtimes then agree with each other, not with the mathematics)."""
    a, b = _div_operands(INT8_VALUES[:, None], INT8_VALUES[None, :], zp1, zp2)
    shifts = (31 - count_leading_zeros_u32(b)) + count_leading_sign_bits(a) - output_shift
    return int(shifts.min()), int(shifts.max())


def _div_operands(x1: np.ndarray, x2: np.ndarray, zp1: int, zp2: int) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, positive denominator) as DivElementwise forms them (signs moved to the
    numerator); a zero denominator is taken as 1 here (its result is replaced, see div_int8)."""
    a = _i64(x1) - zp1
    b = _i64(x2) - zp2
    b = np.where(b == 0, 1, b)
    return np.broadcast_to(np.where(b < 0, -a, a), np.broadcast_shapes(a.shape, b.shape)), np.abs(b)


def div_int8(x1: np.ndarray, x2: np.ndarray, zp1: int, zp2: int, zp_out: int, multiplier: int,
             shift: int, lo: int, hi: int) -> np.ndarray:
    """TFLite's int8 DIV (``DivElementwise``). A denominator equal to its zero point (an error
    in LiteRT, undefined in TFLite Micro) gives the output zero point, the float op's 0."""
    a, b = _div_operands(x1, x2, zp1, zp2)
    recip, recip_shift = get_reciprocal(b, 31)
    headroom = count_leading_sign_bits(a)
    quotient = srdhm(wrap_int32(a << headroom), recip)
    right = recip_shift + headroom - shift
    if np.any(right < 0):
        raise ValueError("div: s1 / (s2 * s_out) >= 2^23 makes DIV shift left")
    out = np.clip(_rounding_divide_by_pot_any(srdhm(quotient, multiplier), right) + zp_out, lo, hi)
    return np.where(_i64(x2) == zp2, zp_out, out)


def _rounding_divide_by_pot_any(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """RoundingDivideByPOT extended past 31 bits (round half away from zero, in int64): the
    value C would compute if its shifts were defined there (``div_shift_range`` tells when
    TFLite's own kernel stays within 31)."""
    e = np.minimum(_i64(exponent), 62)
    x = _i64(x)
    mask = (np.int64(1) << e) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + ((x & mask) > threshold)
