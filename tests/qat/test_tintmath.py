"""edgeq.qat.tintmath (torch) against edgeq.intmath (numpy) on random and extreme values."""
import numpy as np
import torch

from edgeq import intmath
from edgeq.qat import tintmath as tm

RNG = np.random.default_rng(0)
EDGES = np.array([intmath.INT32_MIN, intmath.INT32_MIN + 1, -1, 0, 1, intmath.INT32_MAX - 1, intmath.INT32_MAX])


def _int32(n):
    return np.concatenate([EDGES, RNG.integers(intmath.INT32_MIN, intmath.INT32_MAX, n, dtype=np.int64),
                           RNG.integers(-300, 300, n)])


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.int64))


def test_srdhm_and_rounding_shift_match_numpy():
    a, b = _int32(2000), _int32(2000)[::-1].copy()
    np.testing.assert_array_equal(tm.saturating_rounding_doubling_high_mul(_t(a), _t(b)).numpy(),
                                  intmath.saturating_rounding_doubling_high_mul(a, b))
    e = RNG.integers(0, 32, a.size)
    np.testing.assert_array_equal(tm.rounding_divide_by_pot(_t(a), _t(e)).numpy(), intmath.rounding_divide_by_pot(a, e))


def test_multiply_by_quantized_multiplier_matches_numpy_for_real_multipliers():
    x = _int32(3000)
    for real in (1e-9, 3.7e-5, 0.0123, 0.4999, 0.5, 0.731, 1.0, 1.9, 7.3, 100.0):
        m, s = intmath.quantize_multiplier(real)
        np.testing.assert_array_equal(tm.multiply_by_quantized_multiplier(_t(x), m, s).numpy(),
                                      intmath.multiply_by_quantized_multiplier(x, m, s), err_msg=str(real))
    ms = [intmath.quantize_multiplier(r) for r in RNG.uniform(1e-4, 2.0, x.size)]
    m, s = np.array([p[0] for p in ms]), np.array([p[1] for p in ms])
    np.testing.assert_array_equal(tm.multiply_by_quantized_multiplier(_t(x), _t(m), _t(s)).numpy(),
                                  intmath.multiply_by_quantized_multiplier(x, m, s))


def test_int64_requantization_matches_numpy():
    acc = np.concatenate([RNG.integers(-(2**47), 2**47, 3000), [-(2**47), 2**47 - 1, 0, -1, 1]])
    for real in (1e-7, 0.003, 0.25, 0.9999):
        m, s = intmath.quantize_multiplier(real)
        np.testing.assert_array_equal(tm.requantize_int64(_t(acc), m, s, -32768, 32767).numpy(),
                                      intmath.requantize_int64(acc, m, s, -32768, 32767), err_msg=str(real))


def test_round_half_away_matches_numpy():
    x = np.concatenate([np.arange(-10, 10) + 0.5, RNG.normal(0, 100, 1000)])
    np.testing.assert_array_equal(tm.round_half_away(torch.from_numpy(x)).numpy(), intmath.round_half_away(x))
