"""TFLite's int8 softmax, integer-exact (int8 in, int8 out with scale 1/256, zero point -128).

This is the algorithm of the TFLite / TFLite Micro *reference* kernel
(``tensorflow/lite/kernels/internal/reference/softmax.h``, the templated
``Softmax<int8_t, int8_t>``), which is built on gemmlowp's fixed-point library
(``fixedpoint/fixedpoint.h``) plus two helpers from TFLite's ``common.h``
(``GetReciprocal``, ``CountLeadingZeros``).  Per row of the last axis:

1. ``diff = x - max(x)``; entries with ``diff < diff_min`` are skipped (output -128).
2. ``diff`` is scaled to Q5.26 with ``MultiplyByQuantizedMultiplierGreaterThanOne``
   (``SaturatingRoundingDoublingHighMul(diff * 2^left_shift, M)``).
3. ``exp`` of that (gemmlowp ``exp_on_negative_values``; Q0.31 result), rescaled to
   Q12.19 and summed (plain, wrapping int32 adds).
4. ``1 / sum`` via ``GetReciprocal``: normalise the sum into [1, 2) with a count of
   leading zeros and run gemmlowp's Newton-Raphson ``one_over_one_plus_x_for_x_in_0_1``.
5. ``out = RoundingDivideByPOT(recip * exp, num_bits_over_unit + 31 - 8) - 128``, clamped.
   The kernel checks ``num_bits_over_unit + 23 <= 31``, i.e. a row's sum of exps below 512
   (in units of exp(0)); larger sums (512+ entries near the row maximum) abort TFLM and
   LiteRT's reference kernel, and make :func:`softmax_int8` raise ``ValueError``.

The prepare step (tflite-micro ``softmax_common.cc`` / LiteRT ``activations.cc``
``SoftmaxPrepare<kReference>``) is ``PreprocessSoftmaxScaling`` and
``CalculateInputRadius`` from ``quantization_util.cc``; ``softmax_params`` mirrors it,
including the double-precision arithmetic on the float32 scale and beta.

Conventions (as in :mod:`edgeq.intmath`): every array is int64 holding int32 values.
Where the C code does plain int32 ``+``/``-``/``<<`` (gemmlowp ``Add``/``Sub``/``ShiftLeft``,
which are non-saturating) we wrap to int32; where gemmlowp saturates
(``SaturatingRoundingDoublingHighMul``, ``SaturatingRoundingMultiplyByPOT`` with a positive
exponent) we saturate exactly the way it does.  No floating point is used inside
:func:`softmax_int8`.
"""
from __future__ import annotations

import math

import numpy as np

from .intmath import (
    INT32_MAX,
    INT32_MIN,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
    wrap_int32,
)

# Q formats used by the kernel (reference/softmax.h).
SCALED_DIFF_INTEGER_BITS = 5    # exp() input is Q5.26
ACCUMULATION_INTEGER_BITS = 12  # sum of exps is Q12.19

# gemmlowp constants (raw Q0.31 unless stated), fixedpoint.h.
_EXP_MINUS_ONE_EIGHTH = 1895147668   # exp(-1/8)
_ONE_THIRD = 715827883               # 1/3
# exp(-2^k) for k = -2..4, used by the barrel shifter in exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))
_48_OVER_17_Q2 = 1515870810          # 48/17 in Q2.29
_NEG_32_OVER_17_Q2 = -1010580540     # -32/17 in Q2.29


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# gemmlowp / TFLite fixed-point helpers (vectorised, int64 arrays holding int32 values)
# ---------------------------------------------------------------------------------------------

def fixed_point_one(integer_bits: int) -> int:
    """gemmlowp ``FixedPoint<int32, integer_bits>::One()`` raw value (Q0.31 has no exact 1)."""
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def saturating_rounding_multiply_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 raw values.

    exponent > 0: left shift, saturating when ``x > 2^(31-e) - 1`` (to INT32_MAX) or
    ``x < -(2^(31-e) - 1)`` (to INT32_MIN; note gemmlowp saturates ``-2^(31-e)`` too).
    exponent < 0: ``RoundingDivideByPOT(x, -exponent)``; exponent == 0: identity.
    """
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    result = x << exponent
    result = np.where(x > threshold, INT32_MAX, result)
    return np.where(x < -threshold, INT32_MIN, result)


def rescale(x: np.ndarray, src_integer_bits: int, dst_integer_bits: int) -> np.ndarray:
    """gemmlowp ``Rescale<dst>(FixedPoint<int32, src>)``."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp ``RoundingHalfSum`` (int32): ``(a + b + sign(a + b)) / 2`` truncating."""
    s = _i64(a) + _i64(b)
    t = s + np.where(s >= 0, 1, -1)
    q = np.abs(t) // 2
    return np.where(t < 0, -q, q)


def count_leading_zeros_u32(x: np.ndarray) -> np.ndarray:
    """TFLite ``CountLeadingZeros<uint32_t>`` of the low 32 bits of ``x`` (32 for zero)."""
    v = _i64(x) & 0xFFFFFFFF
    n = np.zeros(v.shape, dtype=np.int64)
    for bits in (16, 8, 4, 2, 1):
        small = v < (np.int64(1) << (32 - bits))
        n = np.where(small, n + bits, n)
        v = np.where(small, v << bits, v)
    return np.where(_i64(x) & 0xFFFFFFFF == 0, 32, n)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """gemmlowp: exp(a) for Q0.31 ``a`` in [-1/4, 0); 4th-order Taylor series around -1/8."""
    srdhm = saturating_rounding_doubling_high_mul
    x = wrap_int32(_i64(a) + (1 << 28))                       # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(
        wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), _ONE_THIRD) + x2), 1)
    return wrap_int32(_EXP_MINUS_ONE_EIGHTH
                      + srdhm(_EXP_MINUS_ONE_EIGHTH, wrap_int32(x + poly)))


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp ``exp_on_negative_values``: Q(integer_bits) input <= 0 -> Q0.31 exp."""
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = np.int64(1) << (frac_bits + exponent)
            result = np.where((remainder & bit) != 0,
                              saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))                   # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, fixed_point_one(0), result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: 1/(1+a) for Q0.31 ``a`` in [0, 1), returned in Q0.31 (Newton-Raphson)."""
    srdhm = saturating_rounding_doubling_high_mul
    half_denominator = rounding_half_sum(a, fixed_point_one(0))              # Q0.31
    x = wrap_int32(_48_OVER_17_Q2 + srdhm(half_denominator, _NEG_32_OVER_17_Q2))  # Q2.29
    one_q2 = fixed_point_one(2)
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)               # Q2.29
        one_minus = wrap_int32(one_q2 - half_denominator_times_x)           # Q2.29
        x = wrap_int32(x + rescale(srdhm(x, one_minus), 4, 2))
    return rescale(x, 1, 0)  # ExactMulByPot<-1> (Q2 -> Q1, same raw) then Rescale<0>


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``GetReciprocal``: returns (Q0.31 reciprocal raw, num_bits_over_unit).

    ``x`` is normalised into [1, 2) by a left shift of ``CountLeadingZeros(uint32(x))`` bits;
    the result approximates ``1 / (x * 2^-num_bits_over_unit)``.  A zero ``x`` (impossible in
    softmax unless the int32 sum wraps to exactly 0) makes the C code shift a uint32 by 32,
    which is undefined; we follow x86, which masks the shift count to 5 bits.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << (headroom_plus_one & 31)) & 0xFFFFFFFF
    shifted_sum_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


# ---------------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------------

def softmax_params(input_scale: float, beta: float = 1.0) -> dict:
    """TFLite's int8 softmax prepare: PreprocessSoftmaxScaling + CalculateInputRadius.

    ``input_scale`` and ``beta`` are float32 in the model (tensor scale, SoftmaxOptions.beta)
    and are widened to double exactly as the runtimes do.  Returns
    ``{"input_multiplier", "input_left_shift", "diff_min"}``.
    """
    scale_d = float(np.float32(input_scale))
    beta_d = float(np.float32(beta))
    max_real_multiplier = float((1 << 31) - 1)  # double-rounding build
    real = min(beta_d * scale_d * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)),
               max_real_multiplier)
    if not real > 1.0:  # QuantizeMultiplierGreaterThanOne: TFLITE_CHECK_GT(m, 1.)
        raise ValueError(f"softmax: beta * input_scale * 2^26 = {real} must exceed 1")
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax: negative input_left_shift")
    # CalculateInputRadius(5, left_shift, 31), double arithmetic then floor.
    radius = math.floor(1.0 * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
                        * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / float(1 << left_shift))
    diff_min = int(-1.0 * radius)
    return {"input_multiplier": int(multiplier), "input_left_shift": int(left_shift),
            "diff_min": diff_min}


def softmax_int8(x: np.ndarray, input_multiplier: int, input_left_shift: int,
                 diff_min: int) -> np.ndarray:
    """TFLite reference int8 softmax over the last axis; returns int8 of the same shape."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("softmax_int8 needs at least one dimension")
    if x.shape[-1] == 0 or x.size == 0:
        return np.zeros(x.shape, dtype=np.int8)
    if not 0 <= input_left_shift <= 31:
        raise ValueError(f"input_left_shift {input_left_shift} out of [0, 31]")
    xs = x.reshape(-1, x.shape[-1]).astype(np.int64)
    if xs.min() < -128 or xs.max() > 127:
        raise ValueError("softmax_int8 input outside the int8 range")

    diff = xs - xs.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne: SRDHM(diff * (1 << left_shift), M), the
    # product in int32 (1 << 31 is INT32_MIN in C; only diff == 0 is valid in that case).
    shifted = wrap_int32(diff * (np.int64(1) << input_left_shift))
    scaled_diff = saturating_rounding_doubling_high_mul(shifted, input_multiplier)   # Q5.26
    exp_q0 = exp_on_negative_values(scaled_diff, SCALED_DIFF_INTEGER_BITS)           # Q0.31
    exp_acc = rescale(exp_q0, 0, ACCUMULATION_INTEGER_BITS)                          # Q12.19
    # int32 adds wrap; addition mod 2^32 is associative, so one wrap at the end is exact.
    sum_of_exps = wrap_int32(np.where(valid, exp_acc, 0).sum(axis=-1, keepdims=True))

    shifted_scale, num_bits_over_unit = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS)
    exponent = num_bits_over_unit + 31 - 8
    if np.any((exponent < 0) | (exponent > 31)):
        # TFLITE_CHECK(0 <= exponent && exponent <= 31): TFLM and LiteRT's reference kernel
        # abort the process here.  It happens when a row's sum of exps reaches 512 (in units
        # of exp(0)), e.g. 512+ entries tied at the row maximum, or when the int32 sum wraps.
        raise ValueError("softmax: sum of exps >= 512 in a row; TFLite's reference int8 softmax "
                         "fails TFLITE_CHECK(exponent <= 31) and aborts on this input")

    unsat = rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(shifted_scale, exp_q0), exponent)
    out = np.clip(unsat - 128, -128, 127)
    out = np.where(valid, out, -128)
    return out.astype(np.int8).reshape(x.shape)


# ---------------------------------------------------------------------------------------------
# Log-softmax
# ---------------------------------------------------------------------------------------------
#
# TFLite's int8 LOG_SOFTMAX (tflite-micro ``micro/kernels/internal/reference/log_softmax.h``
# ``LogSoftmaxQuantized``; LiteRT ``reference/integer_ops/log_softmax.h``, the same algorithm):
# output quantization fixed at 16/256, zero point 127. Per row of the last axis:
#
# 1. ``diff = x - max(x)``; entries with ``diff >= diff_min`` are scaled to Q5.26 by
#    ``MultiplyByQuantizedMultiplier(diff, M, left_shift)`` and their exp (Q0.31) rescaled to
#    Q12.19 and summed (wrapping int32 adds);
# 2. ``log(sum)`` by TFLite's ``log_x_for_x_greater_than_or_equal_to_1<5>`` (Q5.26);
# 3. ``adjusted_diff_min = max(diff_min - 1, MBQM(log_sum + INT32_MIN, reverse_divisor,
#    reverse_shift))``; entries with ``diff > adjusted_diff_min`` give
#    ``RoundingDivideByPOT(diff_q5 - log_sum, 31 - 5 - 4) + 127`` clamped, the others -128.
#
# Prepare (``PreprocessLogSoftmaxScalingExp``): the softmax multiplier and left shift of
# ``PreprocessSoftmaxScaling`` (beta 1), and the reverse scaling
# ``QuantizeMultiplierSmallerThanOneExp((1 << (31 - left_shift)) / M)``.

LOG_SOFTMAX_OUTPUT_QUANT = (16.0 / 256.0, 127)
LOG_SOFTMAX_OUTPUT_INTEGER_BITS = 4

# gemmlowp / TFLite constants of log_x_for_x_greater_than_or_equal_to_1_impl (raw Q0.31)
_LOG_2 = 1488522236               # log(2)
_SQRT_SQRT_HALF = 1805811301      # sqrt(sqrt(0.5))
_SQRT_HALF = 1518500250           # sqrt(0.5)
_ONE_QUARTER = 536870912          # 1/4
_ALPHA_N = 117049297              # 11/240 * sqrt(sqrt(2))
_ALPHA_D = 127690142              # 1/20 * sqrt(sqrt(2))
_ALPHA_I = 1057819769             # 2/sqrt(sqrt(2)) - sqrt(sqrt(2))
_ALPHA_F = 638450708              # 1/4 * sqrt(sqrt(2))


def saturating_rounding_multiply_by_pot_param(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """TFLite ``SaturatingRoundingMultiplyByPOTParam`` for a run-time exponent >= 0 (elementwise):
    ``x << exponent`` saturating above ``2^(31-e) - 1`` and below ``-(2^(31-e) - 1)``."""
    x = _i64(x)
    e = np.broadcast_to(_i64(exponent), x.shape) if x.ndim else _i64(exponent)
    if np.any(e < 0):
        raise ValueError("SaturatingRoundingMultiplyByPOTParam needs a non-negative exponent")
    threshold = (np.int64(1) << (31 - e)) - 1
    result = wrap_int32(x << e)
    result = np.where(x > threshold, INT32_MAX, result)
    result = np.where(x < -threshold, INT32_MIN, result)
    return np.where(e == 0, x, result)


def _saturating_add(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return np.clip(_i64(a) + _i64(b), INT32_MIN, INT32_MAX)


def _saturating_sub(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return np.clip(_i64(a) - _i64(b), INT32_MIN, INT32_MAX)


def log_x_for_x_greater_than_or_equal_to_1(x: np.ndarray, input_integer_bits: int,
                                           output_integer_bits: int) -> np.ndarray:
    """TFLite ``log_x_for_x_greater_than_or_equal_to_1<OutputIntegerBits>`` of
    ``FixedPoint<int32, input_integer_bits>`` raw values (>= 1.0): raw Q(output_integer_bits)."""
    srdhm = saturating_rounding_doubling_high_mul
    srmbpot = saturating_rounding_multiply_by_pot_param
    accum_bits = output_integer_bits + 1
    shifted_quarter = rescale(_i64(_ONE_QUARTER), 0, accum_bits)
    z_a = _i64(x)
    z_a_headroom_plus_1 = count_leading_zeros_u32(z_a)
    r_a_tmp = srmbpot(z_a, z_a_headroom_plus_1 - 1)
    r_a_raw = srmbpot(srdhm(r_a_tmp, _SQRT_HALF), 1)
    z_a_pow_2_adj = _saturating_add(srmbpot(input_integer_bits - z_a_headroom_plus_1, 31 - accum_bits),
                                    shifted_quarter)
    z_b = srdhm(z_a, _SQRT_HALF)
    z_b_headroom = count_leading_zeros_u32(z_b) - 1
    r_b_raw = srmbpot(z_a, z_b_headroom)
    z_b_pow_2_adj = _saturating_sub(srmbpot(input_integer_bits - z_b_headroom, 31 - accum_bits),
                                    shifted_quarter)
    r = np.minimum(r_a_raw, r_b_raw)
    z_pow_2_adj = np.maximum(z_a_pow_2_adj, z_b_pow_2_adj)
    p = rounding_half_sum(r, _SQRT_SQRT_HALF)
    q = wrap_int32(r - _SQRT_SQRT_HALF)
    q = wrap_int32(q + q)
    common_sq = srdhm(q, q)
    num = wrap_int32(srdhm(q, r) + srdhm(srdhm(q, common_sq), _ALPHA_N))
    denom_minus_one_0 = wrap_int32(
        srdhm(p, wrap_int32(wrap_int32(_ALPHA_I + q) + srdhm(_ALPHA_D, common_sq))) + srdhm(_ALPHA_F, q))
    recip_denom = one_over_one_plus_x_for_x_in_0_1(denom_minus_one_0)
    num_scaled = rescale(num, 0, accum_bits)
    return rescale(wrap_int32(srdhm(z_pow_2_adj, _LOG_2) + srdhm(num_scaled, recip_denom)),
                   accum_bits, output_integer_bits)


def log_softmax_params(input_scale: float) -> dict:
    """TFLite's int8 LOG_SOFTMAX prepare (``PreprocessLogSoftmaxScalingExp``, beta 1, and
    ``CalculateInputRadius``): ``{"input_multiplier", "input_left_shift", "diff_min",
    "reverse_scaling_divisor", "reverse_scaling_left_shift"}`` (the latter <= 0)."""
    p = softmax_params(input_scale, 1.0)
    real_reverse = float(1 << (31 - p["input_left_shift"])) / float(p["input_multiplier"])
    divisor, shift = quantize_multiplier(real_reverse)
    if not 0.0 < real_reverse < 1.0 or shift > 0:   # QuantizeMultiplierSmallerThanOneExp's checks
        raise ValueError(f"log_softmax: reverse scaling {real_reverse} out of (0, 1)")
    return {**p, "reverse_scaling_divisor": int(divisor), "reverse_scaling_left_shift": int(shift)}


def log_softmax_int8(x: np.ndarray, input_multiplier: int, input_left_shift: int, diff_min: int,
                     reverse_scaling_divisor: int, reverse_scaling_left_shift: int) -> np.ndarray:
    """TFLite reference int8 log-softmax over the last axis (output 16/256, zero point 127)."""
    from .intmath import multiply_by_quantized_multiplier
    x = np.asarray(x)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.int8)
    xs = x.reshape(-1, x.shape[-1]).astype(np.int64)
    diff = xs - xs.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    diff_q5 = multiply_by_quantized_multiplier(diff, input_multiplier, input_left_shift)
    exp_q12 = rescale(exp_on_negative_values(diff_q5, SCALED_DIFF_INTEGER_BITS), 0, ACCUMULATION_INTEGER_BITS)
    sum_of_exps = wrap_int32(np.where(valid, exp_q12, 0).sum(axis=-1, keepdims=True))
    log_sum = log_x_for_x_greater_than_or_equal_to_1(sum_of_exps, ACCUMULATION_INTEGER_BITS,
                                                     SCALED_DIFF_INTEGER_BITS)
    shifted_log_sum = wrap_int32(log_sum + INT32_MIN)
    adjusted_diff_min = np.maximum(diff_min - 1, multiply_by_quantized_multiplier(
        shifted_log_sum, reverse_scaling_divisor, reverse_scaling_left_shift))
    out = rounding_divide_by_pot(wrap_int32(diff_q5 - log_sum),
                                 31 - SCALED_DIFF_INTEGER_BITS - LOG_SOFTMAX_OUTPUT_INTEGER_BITS) + 127
    out = np.where(diff > adjusted_diff_min, np.clip(out, -128, 127), -128)
    return out.astype(np.int8).reshape(x.shape)
