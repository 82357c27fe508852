"""Integer algorithms of TFLite's int8 LOGISTIC, TANH and HARD_SWISH reference kernels.

* LOGISTIC / TANH (tflite-micro ``reference/integer_ops/logistic.h`` / ``tanh.h``, prepare in
  ``logistic_common.cc`` / ``tanh.cc``): ``x - zp`` is clamped by an input radius, rescaled to
  Q4.27 by ``MultiplyByQuantizedMultiplier`` (multiplier from ``frexp(scale * 2^27)``), run
  through gemmlowp's fixed-point ``logistic`` / ``tanh`` (Q0.31 result) and rounded to the fixed
  output quantization (1/256, -128 and 1/128, 0).
* HARD_SWISH (``reference/hard_swish.h``, prepare in ``hard_swish_common.cc``): int16
  fixed-point with a "relu-ish" multiplier, gemmlowp's int16 rounding high-mul and a
  non-rounding doubling high-mul.

Each is evaluated on all 256 int8 inputs to build the op's lookup table (the ops' run_int is a
table lookup); only integer arithmetic is used on the values (the prepare step derives the
multipliers from float32 scales exactly as the runtimes do).
"""
from __future__ import annotations

import math

import numpy as np

from .intmath import (INT32_MAX, multiply_by_quantized_multiplier, quantize_multiplier,
                      rounding_divide_by_pot, round_half_away, wrap_int32)
from .intmath_softmax import exp_on_negative_values, one_over_one_plus_x_for_x_in_0_1, rescale, rounding_half_sum

INPUT_INTEGER_BITS = 4
INT8_VALUES = np.arange(-128, 128, dtype=np.int64)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def q4_input_params(input_scale: float) -> dict:
    """LOGISTIC / TANH int8 prepare: frexp of scale * 2^27 (no renormalisation, as the kernels
    do it), and CalculateInputRadius(4, left_shift, 31)."""
    real = float(np.float32(input_scale)) * float(1 << (31 - INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    multiplier = round_half_away(q * (1 << 31))
    if multiplier >= 1 << 31:     # static_cast<int32_t>(2^31) in C: does not happen for real scales
        raise ValueError(f"input scale {input_scale} gives a Q31 multiplier of 2^31")
    radius = math.floor(1.0 * ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS))
                        / float(1 << left_shift)) if left_shift >= 0 else \
        math.floor(1.0 * ((1 << INPUT_INTEGER_BITS) - 1) * float(1 << (31 - INPUT_INTEGER_BITS))
                   * float(1 << -left_shift))
    return {"input_multiplier": int(multiplier), "input_left_shift": int(left_shift), "input_range_radius": int(radius)}


def gemmlowp_logistic(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp ``logistic`` of Q(integer_bits) raw values -> Q0.31 raw."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap_int32(-abs_input), integer_bits))
    result_if_negative = wrap_int32(INT32_MAX - result_if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, result_if_positive, result_if_negative))


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: (1 - a)/(1 + a) for Q0.31 ``a`` in (0, 1) (Newton-Raphson, as 1/(1+x))."""
    from .intmath import saturating_rounding_doubling_high_mul as srdhm
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = wrap_int32(1515870810 + srdhm(half_denominator, -1010580540))
    one_q2 = 1 << 29
    for _ in range(3):
        one_minus = wrap_int32(one_q2 - srdhm(half_denominator, x))
        x = wrap_int32(x + rescale(srdhm(x, one_minus), 4, 2))
    return rescale(wrap_int32(x - one_q2), 2, 0)


def gemmlowp_tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp ``tanh`` of Q(integer_bits) raw values -> Q0.31 raw."""
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))               # -|a|
    # ExactMulByPot<1>: same raw, one more integer bit
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def logistic_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """int8 LOGISTIC output (scale 1/256, zero point -128) for every int8 input, as int8[256]."""
    p = q4_input_params(input_scale)
    x = INT8_VALUES - input_zero_point
    q4 = multiply_by_quantized_multiplier(x, p["input_multiplier"], p["input_left_shift"])
    out = rounding_divide_by_pot(gemmlowp_logistic(q4, INPUT_INTEGER_BITS), 31 - 8)
    out = np.clip(out - 128, -128, 127)
    out = np.where(x <= -p["input_range_radius"], -128, np.where(x >= p["input_range_radius"], 127, out))
    return out.astype(np.int8)


def tanh_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """int8 TANH output (scale 1/128, zero point 0) for every int8 input, as int8[256]."""
    p = q4_input_params(input_scale)
    x = INT8_VALUES - input_zero_point
    q4 = multiply_by_quantized_multiplier(x, p["input_multiplier"], p["input_left_shift"])
    out = np.clip(rounding_divide_by_pot(gemmlowp_tanh(q4, INPUT_INTEGER_BITS), 31 - 7), -128, 127)
    out = np.where(x <= -p["input_range_radius"], -128, np.where(x >= p["input_range_radius"], 127, out))
    return out.astype(np.int8)


# --- HARD_SWISH ----------------------------------------------------------------------------

def _srdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    a, b = _i64(a), _i64(b)
    overflow = (a == b) & (a == -32768)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    t = ab + nudge
    q = np.abs(t) // (1 << 15)
    return np.where(overflow, 32767, np.where(t < 0, -q, q))


def _sdhm16(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """TFLite SaturatingDoublingHighMul on int16 (truncating division, no rounding)."""
    a, b = _i64(a), _i64(b)
    overflow = (a == b) & (a == -32768)
    ab = a * b
    q = np.abs(ab) // (1 << 15)
    return np.where(overflow, 32767, np.where(ab < 0, -q, q))


def _sat_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(_i64(x) * (1 << amount), -32768, 32767)


def _to_int16(x: np.ndarray) -> np.ndarray:
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def _downscale_to_int16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if m >= INT32_MAX - (1 << 15):
        return 32767
    return (m + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> dict:
    """HARD_SWISH int8 prepare: float32 arithmetic on the scales, then QuantizeMultiplier."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires_input_scale / np.float32(output_scale)))
    rel_m, rel_e = quantize_multiplier(float(hires_input_scale / reluish_scale))
    if out_e > 0:
        raise ValueError("hardswish: input scale / output scale >= 64 (TFLite's HARD_SWISH needs "
                         "output_multiplier_exponent <= 0)")
    return {"output_multiplier": _downscale_to_int16(out_m), "output_exponent": out_e,
            "reluish_multiplier": _downscale_to_int16(rel_m), "reluish_exponent": rel_e}


def hard_swish_table(input_scale: float, input_zero_point: int, output_scale: float,
                     output_zero_point: int) -> np.ndarray:
    p = hard_swish_params(input_scale, output_scale)
    x = _to_int16(INT8_VALUES - input_zero_point)
    hires = _to_int16(x * (1 << 7))
    preshift = _srdhm16(hires, p["output_multiplier"])
    reluish = hires
    if p["reluish_exponent"] > 0:
        reluish = _sat_left_shift16(reluish, p["reluish_exponent"] - 1)
    reluish = _srdhm16(reluish, p["reluish_multiplier"])
    if p["reluish_exponent"] > 0:
        reluish = _sat_left_shift16(reluish, 1)
    if p["reluish_exponent"] < 0:
        reluish = rounding_divide_by_pot(reluish, -p["reluish_exponent"])
    reluish = (reluish + (1 << 15)) >> 1
    out = _sdhm16(reluish, preshift)
    out = rounding_divide_by_pot(out, -p["output_exponent"])
    out = _to_int16(out + output_zero_point)
    return np.clip(out, -128, 127).astype(np.int8)


# --- LiteRT's int8 LOGISTIC / TANH tables ------------------------------------------------

#: how far (in output steps) every entry of LiteRT's float table must be from a rounding tie
#: for numpy's float32 exp / tanh to stand for the C library's: they may differ by an ulp, and
#: an entry 4e-6 from a tie (seen in a GRU's tanh) then rounds the other way in LiteRT
FLOAT_TABLE_MARGIN = 1e-4


def litert_float_table(kind: str, input_scale: float, input_zero_point: int,
                       with_margin: bool = False) -> np.ndarray | tuple[np.ndarray, float]:
    """LiteRT's reference int8 LOGISTIC / TANH: a table built in float32 at prepare time
    (dequantize, std::exp / std::tanh, scale by the fixed output scale, round half away,
    saturate). TFLite Micro runs the fixed-point kernel instead; the two tables agree for
    almost every input scale (an entry can differ when the float value sits on a rounding
    boundary). ``with_margin``: also the least distance of an unsaturated entry from a tie."""
    x = np.float32(input_scale) * (INT8_VALUES - input_zero_point).astype(np.float32)
    if kind == "sigmoid":
        y = (np.float32(1) / (np.float32(1) + np.exp(-x, dtype=np.float32))).astype(np.float32)
        r, zp = y * np.float32(256.0), -128
    else:
        r, zp = np.tanh(x, dtype=np.float32) * np.float32(128.0), 0
    a = np.abs(r).astype(np.float64)
    q = np.sign(r) * np.floor(a + 0.5) + zp
    table = np.clip(q, -128, 127).astype(np.int8)
    if not with_margin:
        return table
    inside = (q > -128) & (q < 127)
    margin = float(np.abs(a - np.floor(a) - 0.5)[inside].min(initial=0.5))
    return table, margin


def agreeing_input_scale(kind: str, input_scale: float, input_zero_point: int,
                         max_steps: int = 4096) -> float:
    """The float32 scale nearest ``input_scale`` at which TFLite Micro's fixed-point table and
    LiteRT's float table agree, with no entry of the float table near a tie (``FLOAT_TABLE_MARGIN``),
    among scales the int8 -> int8 requantization from ``input_scale`` maps identically (so
    relabelling the input loses nothing)."""
    fixed = logistic_table if kind == "sigmoid" else tanh_table
    base = np.float32(input_scale).view(np.int32)
    for k in range(max_steps + 1):
        for step in ((k, -k) if k else (0,)):
            s = float((base + np.int32(step)).view(np.float32))
            if step:
                m, sh = quantize_multiplier(float(np.float32(input_scale)) / s)
                x = INT8_VALUES - input_zero_point
                if not np.array_equal(multiply_by_quantized_multiplier(x, m, sh), x):
                    continue
            table, margin = litert_float_table(kind, s, input_zero_point, with_margin=True)
            if margin >= FLOAT_TABLE_MARGIN and np.array_equal(fixed(s, input_zero_point), table):
                return s
    raise ValueError(f"no input scale near {input_scale} where TFLite Micro's and LiteRT's int8 "
                     f"{kind} tables agree")


def float_lut_int8(fn, input_scale: float, input_zero_point: int, output_scale: float,  # noqa: ANN001
                   output_zero_point: int) -> np.ndarray:
    """LiteRT's ``LUTPopulate<int8_t>`` for a real function ``fn`` (float64 in, float64 out,
    evaluated on float32 values): dequantize in float32, ``fn``, rescale by the float32 inverse
    output scale, round half away from zero, saturate. The int8[256] table by input + 128."""
    x = np.float32(input_scale) * (INT8_VALUES - input_zero_point).astype(np.float32)
    y = np.asarray(fn(x.astype(np.float64))).astype(np.float32)
    r = y * (np.float32(1.0) / np.float32(output_scale))
    return np.clip(round_half_away(r) + output_zero_point, -128, 127).astype(np.int8)


# --- int16 LOGISTIC / TANH (16x8) ----------------------------------------------------------
#
# TFLite's int16 kernels (``reference/integer_ops/logistic.h`` / ``tanh.h``, prepare in
# tflite-micro ``logistic_common.cc`` / ``tanh.cc`` and LiteRT ``activations.cc``): the input is
# rescaled to 1/(3 * 4096) by an integer multiplier (or a shift for power-of-two scales), its
# magnitude indexes a 256-entry table of sigmoid(i/24) in 0.16 fixed point with linear
# interpolation, and the result is rounded to 2^-15 (output zero point 0).

INT16_OUTPUT_QUANT = (1.0 / 32768.0, 0)
#: TFLite's ``sigmoid_table_uint16`` (kernels/internal/common.h): sigmoid(i / 24) in 0.16 fixed
#: point, i = 0..255. The runtimes' constant, tuned for interpolation: 44 entries are one above
#: round(65536 * sigmoid(i / 24)), so it is data here, not a formula.
_SIGMOID_TABLE_U16 = np.array([
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794,
    41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443,
    48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169, 53581, 53983, 54374,
    54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433, 57724, 58007, 58280, 58544,
    58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110, 61279,
    61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990,
    63090, 63186, 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030,
    64090, 64148, 64204, 64257, 64308, 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019,
    65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234,
    65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360,
    65367, 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476,
    65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498, 65500, 65501,
    65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513, 65514, 65515, 65516,
    65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529,
    65529, 65530, 65530, 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532,
    65532, 65532, 65532, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65533, 65534, 65534,
    65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535], dtype=np.int64)


def sigmoid_table_u16() -> np.ndarray:
    """TFLite's 256-entry sigmoid table (0.16 fixed point, 1/24 steps)."""
    return _SIGMOID_TABLE_U16


def _checked_log2(x: float) -> tuple[bool, int]:
    """TFLite ``CheckedLog2``: float32 log2, rounded; a power of two within 1e-3 (in log2)."""
    lg = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    rounded = float(round_half_away(float(lg)))
    return abs(float(lg) - rounded) < 1e-3, int(rounded)


def int16_lut_params(kind: str, input_scale: float) -> dict:
    """The int16 LOGISTIC / TANH prepare: (input_multiplier, input_left_shift); multiplier 0
    selects the power-of-two path (scale 2^-12, or 2^-11 for tanh)."""
    pot, log2 = _checked_log2(input_scale)
    left_shift = 12 + log2
    pot = pot and (left_shift == 0 or (kind == "tanh" and left_shift == 1))
    if pot:
        return {"input_multiplier": 0, "input_left_shift": left_shift}
    multiplier = float(np.float32(input_scale)) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return {"input_multiplier": int(multiplier), "input_left_shift": left_shift}


def _int16_lut_input(x: np.ndarray, multiplier: int, left_shift: int) -> np.ndarray:
    if multiplier == 0:
        multiplier, left_shift = 3 << left_shift, 0
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return (_i64(x) * multiplier + rounding) >> left_shift


def _sigmoid_table_at(a: np.ndarray, fraction_bits: int, saturated: int) -> np.ndarray:
    """The uint16 sigmoid table linearly interpolated at |input| ``a`` (its top bits index the
    table, the low ``fraction_bits`` interpolate); ``saturated`` past the table's end."""
    table = sigmoid_table_u16()
    whole = a >> fraction_bits
    idx = np.minimum(whole, 254)
    interp = (table[idx] << fraction_bits) + (a & ((1 << fraction_bits) - 1)) * (table[idx + 1] - table[idx])
    return np.where(whole >= 255, saturated, interp)


def logistic_int16(x: np.ndarray, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """TFLite's int16 LOGISTIC (output 2^-15, zero point 0)."""
    v = _int16_lut_input(x, input_multiplier, input_left_shift)
    result = _sigmoid_table_at(np.abs(v), 9, 0x7FFF << 10)
    result = np.where(v >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def tanh_int16(x: np.ndarray, input_multiplier: int, input_left_shift: int) -> np.ndarray:
    """TFLite's int16 TANH (tanh(x) = 2 sigmoid(2x) - 1 on the same table; output 2^-15)."""
    v = _int16_lut_input(x, input_multiplier, input_left_shift)
    result = _sigmoid_table_at(np.abs(v), 8, 0xFFFF << 8)
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)
