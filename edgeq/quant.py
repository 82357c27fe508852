"""Quantization parameters and the float <-> integer maps, in one place.

real = scale * (q - zero_point), with float32 scales (what the artifacts store). Rules:

* activations: int8 asymmetric over a calibrated range (``scale_zero_point``), or int16
  symmetric with zero point 0 over the observed range (``int16_scale``: TFLite's 16x8 mode);
* weights: int8 symmetric in [-127, 127], per output channel (``symmetric_weight_quant``);
* biases: int32 (int64 in 16x8 layers) at input_scale * weight_scale[c] (``quantize_bias``);
* constant operands of activation ops: int8 per tensor over their own range
  (``constant_params``);
* clamp bounds: TFLite's CalculateActivationRangeQuantized (``quantize_value``).

``quantize`` divides as the place that needs it does: float32 data by the float32 scale (what a
runtime does with its inputs), float64 data (constants, offline) in double by the same float32
scale; then rounds half to even (ONNX QuantizeLinear, numpy) or half away from zero (TFLite).
"""
from __future__ import annotations

import numpy as np

from .intmath import round_half_away
from .ir import QuantParams

INT8_MIN, INT8_MAX = -128, 127
INT16_MAX = 32767
WEIGHT_MAX = 127          # int8 weights are symmetric: -127..127 (TFLite's spec)


def dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def scale_zero_point(lo: float, hi: float, qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[float, int]:
    """Asymmetric parameters covering [lo, hi] (widened to include 0); scale is float32."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return scale, zp


def int16_scale(lo: float, hi: float) -> float:
    """Symmetric int16 scale covering [lo, hi] (TFLite's 16x8 activations: zero point 0)."""
    return float(np.float32(max(abs(lo), abs(hi), 1e-8) / INT16_MAX))


def quantize(x: np.ndarray, scale: float, zero_point: int = 0, dtype: str = "int8",
             rounding: str = "half_even") -> np.ndarray:
    """Real values -> saturated integers of ``dtype`` (see the module docstring for the division)."""
    x = np.asarray(x)
    if x.ndim == 0:
        return quantize(x.reshape(1), scale, zero_point, dtype, rounding)[0]
    s = np.float32(scale)
    lo, hi = dtype_range(dtype)
    if x.dtype == np.float32 and rounding == "half_even" and max(-lo, hi) < 2**16 and np.ndim(zero_point) == 0:
        # float32 throughout, a third of the memory of double, the same integers: rounding a
        # float32 to even is exact, adding the zero point is exact below 2^24, and beyond that
        # the clip maps the value to its bound either way
        v = x / s
        np.round(v, out=v)
    else:
        v = (x / s).astype(np.float64) if x.dtype == np.float32 else x.astype(np.float64) / np.float64(s)
        v = np.round(v, out=v) if rounding == "half_even" else round_half_away(v)
    if np.ndim(zero_point) == 0:
        v += zero_point
    else:
        v = v + zero_point
    np.clip(v, lo, hi, out=v)
    return v.astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int = 0) -> np.ndarray:
    """Integers -> float32 reals (computed in double, rounded once)."""
    r = np.asarray(q).astype(np.float64)
    r -= zero_point
    r *= np.float64(np.float32(scale))
    return r.astype(np.float32)


def fake_quantize(x: np.ndarray, scale: float, zero_point: int = 0, dtype: str = "int8") -> np.ndarray:
    """x through quantize and dequantize (float32 division, as at run time).

    The same numbers as ``dequantize(quantize(x))`` in float32 alone: the rounding of an integer
    -valued float32 is exact; adding the zero point is exact below 2^24 and, above, stays far
    outside the range the clip maps to its bound; (q - zp) * scale of float32 operands is
    rounded once, as the exact double product (at most 17 + 24 bits) cast to float32 is."""
    s = np.float32(scale)
    v = np.asarray(x, dtype=np.float32) / s
    np.round(v, out=v)
    v += np.float32(zero_point)
    lo, hi = dtype_range(dtype)
    np.clip(v, lo, hi, out=v)       # integer-valued float32: a cast to ``dtype`` and back is exact
    v -= np.float32(zero_point)
    v *= s
    return v


def fake_quantize_range(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """int8 fake quantization with the parameters ``scale_zero_point(lo, hi)``."""
    return fake_quantize(x, *scale_zero_point(lo, hi))


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """TFLite's way of quantizing a clamp bound: float32 division, round half away."""
    return zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))


def constant_params(data: np.ndarray) -> tuple[float, int]:
    """int8 per-tensor parameters of a constant operand over its own range."""
    return scale_zero_point(float(np.min(data)), float(np.max(data)))


def symmetric_weight_quant(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, QuantParams]:
    """int8 weights in [-127, 127], zero point 0, per channel along ``axis`` (or per tensor)."""
    if axis is None:
        amax = np.array([np.abs(w).max()], dtype=np.float64)
        bshape = (1,) * w.ndim
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1).astype(np.float64)
        bshape = tuple(w.shape[axis] if i == axis else 1 for i in range(w.ndim))
    scale = (np.maximum(amax, 1e-12) / WEIGHT_MAX).astype(np.float32)
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(bshape)), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)
    return q, QuantParams(scale, np.zeros_like(scale, dtype=np.int64), axis)


def bias_scale(input_scale: float, weight_scales: np.ndarray) -> np.ndarray:
    return (np.float64(input_scale) * np.asarray(weight_scales).astype(np.float64)).astype(np.float32)


def quantize_bias(b: np.ndarray, input_scale: float, weight_scales: np.ndarray,
                  wide: bool = False) -> tuple[np.ndarray, QuantParams]:
    """int32 bias (int64 when ``wide``: 16x8 layers) at input_scale * weight_scale[c], zero point 0."""
    scale = bias_scale(input_scale, weight_scales)
    q = np.round(b.astype(np.float64) / scale.astype(np.float64))
    q = np.clip(q, -(2**47), 2**47 - 1).astype(np.int64) if wide else \
        np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)
    axis = 0 if scale.size > 1 else None
    return q, QuantParams(scale, np.zeros(scale.size, dtype=np.int64), axis)


def dequantize_constant(data: np.ndarray, q: QuantParams) -> np.ndarray:
    """A quantized constant (per tensor or per channel) back to float32."""
    shape = [1] * data.ndim
    if q.per_channel:
        shape[q.axis] = -1
    zp = q.zero_point.astype(np.float64).reshape(shape)
    return ((data.astype(np.float64) - zp) * q.scale.astype(np.float64).reshape(shape)).astype(np.float32)
