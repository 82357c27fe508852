"""Calibration: stream data through the float graph and choose a range per activation tensor.

Two streaming passes keep memory independent of the set size: the first records min/max, the
second fills a fixed-range histogram (only for methods that need one). Methods:
``minmax``; ``percentile`` (clip at the given percentiles); ``mse`` (search the clipping range
that minimises the expected int8 quantization error over the histogram)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import interpreter
from .errors import EdgeqError
from .ir import Graph

METHODS = ("minmax", "percentile", "mse")
BINS = 2048


def calibrate(graph: Graph, inputs: list[np.ndarray], method: str = "mse", percentile: float = 99.99,
              batch_size: int = 32, progress: Callable[[int], None] | None = None) -> dict[str, tuple[float, float]]:
    """Return {tensor name: (lo, hi)} for every activation of the float ``graph``."""
    if method not in METHODS:
        raise EdgeqError(f"unknown calibration method '{method}'; choose one of {', '.join(METHODS)}")
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}

    def minmax(name: str, x: np.ndarray) -> None:
        lo[name] = min(lo.get(name, np.inf), float(x.min()))
        hi[name] = max(hi.get(name, -np.inf), float(x.max()))

    _stream(graph, inputs, batch_size, minmax, progress)
    if method == "minmax":
        return {k: (lo[k], hi[k]) for k in lo}
    hists = {k: np.zeros(BINS, dtype=np.int64) for k in lo}
    edges = {k: (min(lo[k], 0.0), max(hi[k], 0.0)) for k in lo}

    def histogram(name: str, x: np.ndarray) -> None:
        a, b = edges[name]
        if b > a:
            hists[name] += np.histogram(x, bins=BINS, range=(a, b))[0]

    _stream(graph, inputs, batch_size, histogram, progress)
    choose = _percentile_range if method == "percentile" else _mse_range
    out = {}
    for k in lo:
        a, b = edges[k]
        out[k] = (lo[k], hi[k]) if b <= a else choose(hists[k], a, b, percentile)
    return out


def _stream(graph: Graph, inputs: list[np.ndarray], batch_size: int,
            fn: Callable[[str, np.ndarray], None], progress: Callable[[int], None] | None) -> None:
    n = inputs[0].shape[0]
    for start in range(0, n, batch_size):
        chunk = [np.array(x[start:start + batch_size], dtype=np.float32) for x in inputs]
        interpreter.run(graph, chunk, on_tensor=fn)
        if progress:
            progress(len(chunk[0]))


def _percentile_range(hist: np.ndarray, a: float, b: float, pct: float) -> tuple[float, float]:
    cdf = np.cumsum(hist) / max(1, hist.sum())
    width = (b - a) / BINS
    tail = (100.0 - pct) / 100.0
    lo_bin = int(np.searchsorted(cdf, tail, side="left"))
    hi_bin = int(np.searchsorted(cdf, 1.0 - tail, side="left"))
    lo = a + lo_bin * width if a < 0 else a
    hi = a + (hi_bin + 1) * width
    return min(lo, 0.0), max(hi, 0.0)


def quant_error(hist: np.ndarray, a: float, b: float, lo: float, hi: float) -> float:
    """Expected squared error of int8-quantizing the histogrammed values with range [lo, hi]."""
    scale, zp = scale_zero_point(lo, hi)
    centers = a + (np.arange(BINS) + 0.5) * (b - a) / BINS
    q = np.clip(np.round(centers / scale) + zp, -128, 127)
    return float(np.sum(hist * ((q - zp) * scale - centers) ** 2))


def _mse_range(hist: np.ndarray, a: float, b: float, _pct: float) -> tuple[float, float]:
    """Grid search over independent clipping fractions of both ends (one end when the data
    never goes below zero), minimising the expected quantization error."""
    fracs = np.linspace(0.2, 1.0, 41)
    lo_fracs = fracs if a < 0 else np.array([1.0])
    best = (np.inf, a, b)
    for fl in lo_fracs:
        for fh in fracs:
            err = quant_error(hist, a, b, a * fl, b * fh)
            if err < best[0]:
                best = (err, a * fl, b * fh)
    return best[1], best[2]


def scale_zero_point(lo: float, hi: float, qmin: int = -128, qmax: int = 127) -> tuple[float, int]:
    """Asymmetric parameters covering [lo, hi] (widened to include 0); scale is float32."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / (qmax - qmin)))
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return scale, zp
