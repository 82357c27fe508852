"""edgeq.quant: the quantization parameter rules and the float <-> integer maps, against
hand-computed values."""
import numpy as np
import pytest

from edgeq.ir import QuantParams
from edgeq.quant import (constant_params, dequantize, dequantize_constant, fake_quantize, int16_scale, quantize,
                         quantize_bias, quantize_value, scale_zero_point, symmetric_weight_quant)


def test_scale_zero_point_covers_the_range_and_zero():
    s, zp = scale_zero_point(0.0, 6.0)
    assert s == pytest.approx(6.0 / 255, rel=1e-7) and zp == -128
    s, zp = scale_zero_point(-1.0, 3.0)         # 0 maps to -128 + 1/s = -64.25 -> -64
    assert s == np.float32(4.0 / 255) and zp == -64
    s, zp = scale_zero_point(2.0, 5.0)           # widened to include 0
    assert zp == -128 and s == np.float32(5.0 / 255)
    assert scale_zero_point(0.0, 0.0)[0] > 0     # a constant-zero tensor still gets a scale


def test_int16_scale_is_symmetric_over_the_larger_end():
    assert int16_scale(-3.0, 1.0) == np.float32(3.0 / 32767)
    assert int16_scale(-0.5, 2.0) == np.float32(2.0 / 32767)


def test_quantize_rounds_ties_as_asked():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5], dtype=np.float32)
    assert quantize(x, 1.0, 0).tolist() == [0, 2, 2, 0, -2]                        # half to even (ONNX)
    assert quantize(x, 1.0, 0, rounding="half_away").tolist() == [1, 2, 3, -1, -2]  # TFLite
    assert quantize(np.array([1000.0], np.float32), 1.0, 0).tolist() == [127]      # saturates
    assert quantize(np.array([-1000.0]), 1.0, 0, "int16").tolist() == [-1000]


def test_float32_data_is_divided_in_float32_and_constants_in_double():
    # a / s is exactly 13.5 in float32 (a tie, to even: 14) but 13.4999998... in double (13)
    a, s = np.float32(0.24009709060192108), np.float32(0.01778496988117695)
    assert quantize(np.array([a], np.float32), s, 0).tolist() == [14]
    assert quantize(np.array([a], np.float64), s, 0).tolist() == [13]


def test_dequantize_and_fake_quantize():
    q = np.array([-128, 0, 127], dtype=np.int8)
    np.testing.assert_array_equal(dequantize(q, 0.5, -10), np.array([-59.0, 5.0, 68.5], np.float32))
    x = np.array([0.26, -0.74], dtype=np.float32)
    np.testing.assert_array_equal(fake_quantize(x, 0.5, 0), np.array([0.5, -0.5], np.float32))


def test_symmetric_weights_per_channel_and_per_tensor():
    w = np.array([[1.0, -2.0], [0.5, 0.25]], dtype=np.float32)
    q, p = symmetric_weight_quant(w, 0)
    np.testing.assert_array_equal(p.scale, np.array([2.0 / 127, 0.5 / 127], np.float32))
    assert q.tolist() == [[64, -127], [127, 64]] and p.axis == 0 and not p.zero_point.any()
    q, p = symmetric_weight_quant(w, None)
    assert p.axis is None and q.tolist() == [[64, -127], [32, 16]]


def test_bias_at_input_times_weight_scale():
    q, p = quantize_bias(np.array([1.0, -1.0]), 0.5, np.array([0.25, 0.125], np.float32))
    assert q.dtype == np.int32 and q.tolist() == [8, -16] and p.axis == 0
    q, _ = quantize_bias(np.array([1e12]), 1e-3, np.array([1e-3], np.float32))
    assert q.tolist() == [2**31 - 1]                               # int32 saturates
    q, _ = quantize_bias(np.array([1e12]), 1e-3, np.array([1e-3], np.float32), wide=True)
    assert q.dtype == np.int64 and q[0] > 2**31                   # 16x8 layers: int64


def test_clamp_bounds_and_constant_operands():
    assert quantize_value(6.0, 0.05, -128) == -8                   # 6 / 0.05 = 120
    assert quantize_value(0.0, 0.1, 3) == 3
    assert constant_params(np.array([-1.0, 3.0])) == scale_zero_point(-1.0, 3.0)


def test_dequantize_constant_per_channel():
    data = np.array([[2, -2], [4, 4]], dtype=np.int8)
    out = dequantize_constant(data, QuantParams(np.array([0.5, 0.25]), np.array([0, 0]), axis=0))
    np.testing.assert_array_equal(out, np.array([[1.0, -1.0], [1.0, 1.0]], np.float32))


def test_fake_quantize_in_float32_is_the_double_computation():
    rng = np.random.default_rng(0)
    for dtype, zp in (("int8", -7), ("int8", 100), ("int16", 0)):
        scale = float(np.float32(0.0123))
        x = np.concatenate([rng.standard_normal(5000).astype(np.float32) * 3,
                            ((np.arange(-300, 300) + 0.5) * np.float32(scale)).astype(np.float32),   # ties
                            np.array([0.0, np.inf, -np.inf, 3e38, -3e38], np.float32)])
        with np.errstate(over="ignore"):   # float32 division (inf beyond the range), rounding in double
            v = np.round((x / np.float32(scale)).astype(np.float64)) + zp
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        expect = ((np.clip(v, lo, hi) - zp) * np.float64(np.float32(scale))).astype(np.float32)
        with np.errstate(over="ignore"):
            got = fake_quantize(x, scale, zp, dtype)
        assert got.dtype == np.float32 and np.array_equal(got.view(np.int32), expect.view(np.int32))


def test_quantize_of_float32_data_is_the_double_computation():
    """The float32 path (division, rounding to even, zero point, clip) gives the integers of
    the same steps in double after the float32 division, ties and extremes included."""
    rng = np.random.default_rng(1)
    scale = float(np.float32(0.0173))
    x = np.concatenate([rng.standard_normal(5000).astype(np.float32) * 3,
                        ((np.arange(-300, 300) + 0.5) * np.float32(scale)).astype(np.float32),   # ties
                        np.array([0.0, -0.0, np.inf, -np.inf, 3e38, -3e38, 2.0 ** 24 * scale], np.float32)])
    for dtype, zp in (("int8", -7), ("int8", 127), ("uint8", 128), ("int16", 0)):
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
        with np.errstate(over="ignore", invalid="ignore"):
            expect = np.clip(np.round((x / np.float32(scale)).astype(np.float64)) + zp, lo, hi).astype(dtype)
            got = quantize(x, scale, zp, dtype)
        assert got.dtype == np.dtype(dtype) and np.array_equal(got, expect), dtype
