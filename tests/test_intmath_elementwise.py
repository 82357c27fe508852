"""The integer math of RSQRT, L2_NORMALIZATION, SQUARED_DIFFERENCE, DIV, BATCH_MATMUL's
requantization and the int16 LOGISTIC / TANH, against independent models: the C algorithms
re-written with Python integers (one value at a time, exact, C's int32 wrapping where the C code
wraps), hand-computed cases, and the real-valued functions they approximate.

(The runtimes themselves judge the kernels in tests/targets/tflite/test_tflite_real_ops.py.)"""
from fractions import Fraction
import math

import numpy as np
import pytest

from edgeq import intmath
from edgeq import intmath_activations as ia
from edgeq import intmath_elementwise as ie

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# --- a scalar big-integer model of gemmlowp / TFLite fixed point ------------------------------

def wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    q = abs(ab + nudge) // 2**31
    return q if ab + nudge >= 0 else -q


def rdbpot(x: int, e: int) -> int:
    """x / 2^e rounded to nearest, ties away from zero (exact rationals)."""
    v = Fraction(x, 2**e)
    fl = math.floor(v)
    frac = v - fl
    return fl + 1 if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and v > 0) else fl


def sat_shift_left(x: int, e: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<e> for e > 0."""
    if x > (2**(31 - e)) - 1:
        return I32_MAX
    if x < -((2**(31 - e)) - 1):
        return I32_MIN
    return x << e


def mbqm(x: int, m: int, shift: int) -> int:
    return rdbpot(srdhm(wrap32(x * 2**max(shift, 0)), m), max(-shift, 0))


def clz32(x: int) -> int:
    return 32 - (x & 0xFFFFFFFF).bit_length()


def inv_sqrt_model(x: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(x, kReverseShift = -1), one value, from its C text."""
    if x <= 1:
        return I32_MAX, 0
    shift = 11
    while x >= 2**29:
        x //= 4
        shift += 1
    left_pairs = (clz32(x) - 1) // 2 - 1
    shift -= left_pairs
    x <<= 2 * left_pairs
    half = rdbpot(x >> 1, 1)
    y = 1 << 28                                          # F3 one
    for _ in range(5):
        y3 = sat_shift_left(srdhm(srdhm(y, y), y), 6)
        y = sat_shift_left(wrap32(srdhm(3 << 27, y) - srdhm(half, y3)), 3)
    y = srdhm(y, 1518500250)
    if shift < 0:
        y, shift = wrap32(y << -shift), 0
    return y, -shift


# --- inverse square root ---------------------------------------------------------------------

def test_inv_sqrt_matches_the_scalar_model_and_approximates_one_over_sqrt():
    rng = np.random.default_rng(0)
    xs = np.concatenate([np.arange(0, 70000), rng.integers(70000, I32_MAX, 30000, endpoint=True),
                         [2**29 - 1, 2**29, 2**30, I32_MAX]]).astype(np.int64)
    m, s = ie.inv_sqrt_multiplier_exp(xs)
    for k in list(range(0, 70000, 97)) + list(range(70000, xs.size)):
        assert (int(m[k]), int(s[k])) == inv_sqrt_model(int(xs[k])), int(xs[k])
    big = xs >= 2
    approx = m[big].astype(np.float64) * 2.0 ** (s[big].astype(np.float64) - 31)
    np.testing.assert_allclose(approx, 1 / np.sqrt(xs[big].astype(np.float64)), rtol=2e-6)


def test_inv_sqrt_hand_cases():
    # 0 and 1 share TFLite's special case; 1/sqrt(4) = 0.5 within the kernel's precision
    m, s = ie.inv_sqrt_multiplier_exp(np.array([0, 1, 4]))
    assert (int(m[0]), int(s[0])) == (I32_MAX, 0) == (int(m[1]), int(s[1]))   # 0 is treated as 1
    assert abs(int(m[2]) * 2.0 ** (int(s[2]) - 31) - 0.5) < 1e-8


# --- RSQRT -----------------------------------------------------------------------------------

def rsqrt_model(q: int, zp: int, m: int, shift: int, zp_out: int) -> int:
    v = max(q - zp, 0)
    if v == 0:
        return 127
    inv, inv_shift = inv_sqrt_model(v)
    data = mbqm(1, inv, inv_shift + 20)
    return min(127, max(-128, mbqm(data, m, shift - 20) + zp_out))


@pytest.mark.parametrize("seed", range(6))
def test_rsqrt_table_matches_the_scalar_model_and_is_within_one_lsb(seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = float(np.float32(10 ** rng.uniform(-4, 0))), float(np.float32(10 ** rng.uniform(-2, 1)))
    zp, zp_out = int(rng.integers(-128, -60)), int(rng.integers(-128, 0))
    m, sh = ie.rsqrt_multiplier(s_in, s_out)
    # the multiplier: 1 / (sqrtf(s_in) * s_out), the product rounded to float32 (both runtimes)
    assert (m, sh) == intmath.quantize_multiplier(1.0 / float(np.float32(np.sqrt(np.float32(s_in)) * np.float32(s_out))))
    table = ie.rsqrt_int8(ie.INT8_VALUES, zp, m, sh, zp_out)
    for q in range(-128, 128):
        assert int(table[q + 128]) == rsqrt_model(q, zp, m, sh, zp_out)
    v = ie.INT8_VALUES[ie.INT8_VALUES > zp] - zp
    exact = np.clip(np.round(1 / np.sqrt(v * s_in) / s_out) + zp_out, -128, 127)
    assert np.abs(table[ie.INT8_VALUES > zp] - exact).max() <= 1


# --- L2_NORMALIZATION --------------------------------------------------------------------------

def test_l2_normalize_matches_the_scalar_model_and_the_unit_vector():
    rng = np.random.default_rng(1)
    for depth, zp in ((1, 0), (7, -3), (64, 20), (300, -128)):
        x = rng.integers(-128, 128, (5, depth)).astype(np.int8)
        x[0] = zp                                         # an all-zero row: zeros out
        y = ie.l2_normalize_int8(x, zp)
        for r in range(5):
            v = [int(a) - zp for a in x[r]]
            inv, inv_shift = inv_sqrt_model(sum(a * a for a in v))
            want = [min(127, max(-128, mbqm(a, inv, inv_shift + 7))) for a in v]
            assert y[r].tolist() == want
        real = (x[1:].astype(np.float64) - zp)
        unit = real / np.linalg.norm(real, axis=1, keepdims=True)
        assert np.abs(y[1:] - np.clip(np.round(unit * 128), -128, 127)).max() <= 1


# --- SQUARED_DIFFERENCE -----------------------------------------------------------------------

def test_squared_difference_hand_case():
    # s1 = s2 = 0.5, s_out = 0.25: input multipliers 0.5 / 1 = 0.5 exactly (2^30, 0); output
    # multiplier 1^2 / (2^14 * 0.25) = 2^-12. (3 - 1) and (-1 - 0): ((2 - -1) * 0.5)^2 = 2.25 -> 9
    p = ie.squared_difference_params(0.5, 0.5, 0.25, 7)
    assert (p["input1_multiplier"], p["input1_shift"]) == (2**30, 0)
    assert (p["output_multiplier"], p["output_shift"]) == (2**30, -11)
    y = ie.squared_difference_int(p, np.array([3]), np.array([-1]), 1, 0, -128, -128, 127)
    assert int(y[0]) == 9 - 128


def test_squared_difference_matches_the_scalar_model():
    rng = np.random.default_rng(2)
    for _ in range(20):
        s1, s2 = (float(np.float32(10 ** rng.uniform(-3, 0))) for _ in range(2))
        s_out = float(np.float32(max(s1, s2) ** 2 * 10 ** rng.uniform(1, 3)))
        zp1, zp2, zpo = (int(v) for v in rng.integers(-128, 128, 3))
        p = ie.squared_difference_params(s1, s2, s_out, 7)
        x1, x2 = rng.integers(-128, 128, 200), rng.integers(-128, 128, 200)
        y = ie.squared_difference_int(p, x1, x2, zp1, zp2, zpo, -128, 127)
        for a, b, got in zip(x1.tolist(), x2.tolist(), y.tolist()):
            d = rdbpot(srdhm((a - zp1) << 7, p["input1_multiplier"]), -p["input1_shift"]) - \
                rdbpot(srdhm((b - zp2) << 7, p["input2_multiplier"]), -p["input2_shift"])
            assert got == min(127, max(-128, mbqm(wrap32(d * d), p["output_multiplier"], p["output_shift"]) + zpo))


def test_squared_difference_refuses_an_output_multiplier_of_one():
    with pytest.raises(ValueError, match="not below 1"):
        ie.squared_difference_params(1.0, 1.0, 1.0 / 4096, 7)


# --- DIV ---------------------------------------------------------------------------------------

def test_div_hand_case_and_zero_denominator():
    # s1 = 1, s2 = 1, s_out = 1/128: M(128) = (2^30, 8). 6 / 3 = 2 -> 256 saturates; 1 / 4 = 0.25 -> 32
    m, sh = ie.div_multiplier(1.0, 1.0, 1 / 128)
    assert (m, sh) == (2**30, 8)
    y = ie.div_int8(np.array([1, 6, 5, -1]), np.array([4, 3, 0, 4]), 0, 0, 0, m, sh, -128, 127)
    assert y.tolist() == [32, 127, 0, -32]           # b == zp: the output zero point, like the float op


def test_div_within_one_lsb_where_tflite_shifts_stay_within_31():
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        s1, s2 = (float(np.float32(10 ** rng.uniform(-2, 1))) for _ in range(2))
        s_out = float(np.float32(s1 / s2 / 10 ** rng.uniform(1.8, 3)))
        zp1, zp2, zpo = int(rng.integers(-128, 128)), -128, int(rng.integers(-128, 128))
        m, sh = ie.div_multiplier(s1, s2, s_out)
        lo, hi = ie.div_shift_range(sh, zp1, zp2)
        assert 0 <= lo <= hi
        a, b = np.meshgrid(np.arange(-128, 128), np.arange(-127, 128))
        y = ie.div_int8(a, b, zp1, zp2, zpo, m, sh, -128, 127)
        exact = np.clip(np.round((a - zp1) * s1 / ((b - zp2) * s2) / s_out) + zpo, -128, 127)
        assert np.abs(y - exact).max() <= 1
        checked += hi <= 31
    assert checked > 10


# --- BATCH_MATMUL requantization ----------------------------------------------------------------

def test_batch_matmul_requantization_hand_cases():
    from edgeq.ir import Graph, Node, QuantParams, Tensor
    from edgeq.ops import get_op
    g = Graph(quantized=True)
    for name, shape, dtype, q in (("a", (1, 2, 2), "int8", (0.625, 1)), ("b", (1, 2, 1), "int8", (0.25, -2)),
                                  ("y", (1, 2, 1), "int8", (0.125, 3))):
        g.add_tensor(Tensor(name, shape, dtype, quant=QuantParams(*q)))
    node = Node("batch_matmul", ["a", "b"], ["y"], {}, "mm")
    get_op("batch_matmul").quantize(node, g, {})
    # M(0.625 * 0.25 / 0.125 = 1.25) = (0.625 * 2^31, 1); [[3, 5], [-1, 2]] - 1 = [[2, 4], [-2, 1]];
    # [6, 1] + 2 = [8, 3]: acc [2*8 + 4*3, -2*8 + 1*3] = [28, -13] -> 28 * 1.25 = 35, -16.25 -> -16
    a = np.array([[[3, 5], [-1, 2]]], np.int8)
    b = np.array([[[6], [1]]], np.int8)
    y = get_op("batch_matmul").run_int(node, g, [a, b])[0]
    assert (node.attrs["multiplier"], node.attrs["shift"]) == (1342177280, 1)
    assert y.ravel().tolist() == [35 + 3, -16 + 3]
    # 16x8: the int64 accumulator and TFLite's Q15-reduced multiplier; -16.25 still -> -16
    for name in ("a", "b", "y"):
        t = g.t(name)
        t.dtype, t.quant = "int16", QuantParams(t.quant.scale, 0)
    get_op("batch_matmul").quantize(node, g, {})
    y16 = get_op("batch_matmul").run_int(node, g, [a.astype(np.int16) - 1, b.astype(np.int16) + 2])[0]
    assert y16.dtype == np.int16 and y16.ravel().tolist() == [35, -16]
    # 300 * 32767^2 = 322102886700 needs 39 bits; at s_out = 160 (M = 2^-10) the result,
    # 314553600, saturates to 32767; accumulated in int32 it would wrap to -19660500 (-> -19200)
    g.t("y").quant = QuantParams(160.0, 0)
    get_op("batch_matmul").quantize(node, g, {})
    big = np.full((1, 1, 300), 32767, np.int16)
    y_big = get_op("batch_matmul").run_int(node, g, [big, big.reshape(1, 300, 1)])[0]
    assert int(y_big.ravel()[0]) == 32767
    big[0, 0, :150] = -32767                           # the two halves cancel exactly: 0
    assert int(get_op("batch_matmul").run_int(node, g, [big, np.abs(big).reshape(1, 300, 1)])[0].ravel()[0]) == 0


# --- int16 LOGISTIC / TANH -------------------------------------------------------------------------

def test_sigmoid_table_is_close_to_the_function_it_tabulates():
    t = ia.sigmoid_table_u16()
    exact = 65536 / (1 + np.exp(-np.arange(256) / 24))
    assert t.shape == (256,) and t[0] == 32768 and t[-1] == 65535
    assert np.abs(t - exact).max() < 1.5 and np.all(np.diff(t) >= 0)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
@pytest.mark.parametrize("scale", [2.0**-12, 2.0**-11, 1.7e-4, 9.3e-4, 3e-3])
def test_int16_logistic_tanh_track_the_function(kind, scale):
    x = np.arange(-32768, 32768)
    p = ia.int16_lut_params(kind, scale)
    kernel = ia.logistic_int16 if kind == "sigmoid" else ia.tanh_int16
    y = kernel(x, p["input_multiplier"], p["input_left_shift"]).astype(np.float64)
    real = x * np.float64(np.float32(scale))
    want = np.clip(np.round(32768 * (1 / (1 + np.exp(-real)) if kind == "sigmoid" else np.tanh(real))), -32768, 32767)
    # in 2^-15 steps: LOGISTIC within 1; TANH within 3 (its input multiplier is truncated)
    assert np.abs(y - want).max() <= (1 if kind == "sigmoid" else 3)
    if scale in (2.0**-12, 2.0**-11) and (kind == "tanh" or scale == 2.0**-12):
        assert p["input_multiplier"] == 0    # TFLite's power-of-two path
