"""edgeq.intmath_softmax's log-softmax: TFLite's reference int8 LOG_SOFTMAX in integer numpy.

Accuracy against float (the fixed-point log and exp are good to ~1e-7), the log helper against
math.log, and bit-exactness against TFLite Micro and LiteRT's reference kernels over many
random scales, depths and saturating rows (a one-operator LOG_SOFTMAX model)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeq.intmath_softmax import log_softmax_int8, log_softmax_params, log_x_for_x_greater_than_or_equal_to_1
from tests.helpers import build_softmax_model, run_litert, run_tflm


def _float_log_softmax_q(x: np.ndarray, scale: float) -> np.ndarray:
    z = x.astype(np.float64) * float(np.float32(scale))
    z = z - z.max(axis=-1, keepdims=True)
    ls = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return np.clip(np.round(ls * 16.0) + 127, -128, 127)


def test_log_helper_matches_math_log() -> None:
    raw = np.unique(np.concatenate([np.arange(1 << 19, (1 << 19) + 5000, 37),
                                    np.random.default_rng(0).integers(1 << 19, 2**31 - 1, 5000)]))
    got = log_x_for_x_greater_than_or_equal_to_1(raw, 12, 5) / 2.0 ** 26
    want = np.log(raw / 2.0 ** 19)
    assert np.abs(got - want).max() < 2e-7
    assert log_x_for_x_greater_than_or_equal_to_1(np.array([1 << 19]), 12, 5)[0] == 0


@pytest.mark.parametrize("scale", [0.01, 0.05, 0.1, 0.3, 1.0])
def test_close_to_float_log_softmax(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 100))
    for depth in (2, 10, 100):
        x = rng.integers(-128, 128, (500, depth))
        diff = np.abs(log_softmax_int8(x, **log_softmax_params(scale)).astype(np.int64) - _float_log_softmax_q(x, scale))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (depth, diff.max(), (diff > 0).mean())


def test_params_and_saturation() -> None:
    p = log_softmax_params(0.1)
    assert p["reverse_scaling_left_shift"] <= 0 and 1 << 30 <= p["reverse_scaling_divisor"] < 1 << 31
    x = np.array([[127, -128, 0]])
    y = log_softmax_int8(x, **p)
    assert y[0, 0] == 127 and y[0, 1] == -128          # log p = 0 exactly; log p < -15.9 saturates


def test_bit_exact_with_tflm_and_litert_reference() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        scale = float(np.float32(10 ** rng.uniform(-2.3, 0.5)))
        depth = int(rng.choice([1, 2, 7, 33, 300]))
        x = rng.integers(-128, 128, (200, depth)).astype(np.int8)
        x[0], x[1] = 7, -128
        x[1, -1] = 127
        ours = log_softmax_int8(x, **log_softmax_params(scale))
        buf = build_softmax_model(x.shape, scale, int(rng.integers(-128, 128)), log=True)
        np.testing.assert_array_equal(run_tflm(buf, x), ours, err_msg=f"TFLM scale {scale} depth {depth}")
        np.testing.assert_array_equal(run_litert(buf, x, reference=True), ours, err_msg=f"LiteRT scale {scale}")
