"""Calibration: stream data through the float graph and choose a range per activation tensor.

Two streaming passes keep memory independent of the set size: the first records min/max, the
second fills a fixed-range histogram per tensor. Range choosers work on that histogram:

* ``minmax``: the observed range;
* ``percentile``: clip at the given percentile at each end;
* ``mse``: the clipping range minimising the expected int8 quantization error;
* ``entropy``: the clipping range minimising the KL divergence between the value distribution
  and its int8-quantized version (TensorRT's method, on an asymmetric range);
* ``auto``: per tensor, the candidate of the methods above that gives the smallest error at the
  output of the layers that consume the tensor (measured on a sample batch, in float).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import interpreter
from .errors import EdgeqError
from .ir import Graph
from .ops import get_op
from .quant import fake_quantize_range, quantize, scale_zero_point

METHODS = ("minmax", "percentile", "mse", "entropy", "auto")
BINS = 2048
AUTO_SAMPLES = 32


class Ranges(dict):
    """{tensor name: (lo, hi)} chosen by a method; ``observed`` holds the plain min/max (what
    int16 activations use: with 16 bits there is no reason to clip).

    A range is chosen when it is first asked for (``chooser``): many tensors never need one
    (reshapes and slices carry their input's quantization, sigmoid's is fixed), and the search
    of the clipping methods is the costly part of calibration."""

    observed: dict[str, tuple[float, float]]
    chooser: Callable[[str], tuple[float, float]] | None = None

    def __missing__(self, name: str) -> tuple[float, float]:
        if self.chooser is None or name not in self.observed:
            raise KeyError(name)
        value = self[name] = self.chooser(name)
        return value

    def with_values(self, values: dict[str, tuple[float, float]]) -> "Ranges":
        """These ranges with some replaced (the rest still chosen on demand)."""
        out = Ranges({**dict(dict.items(self)), **values})
        out.observed, out.chooser = self.observed, self.chooser
        return out

    # every observed tensor has a range, chosen or not yet: iterate over all of them
    def __iter__(self):  # noqa: ANN204
        return iter(self.observed) if self.chooser is not None else dict.__iter__(self)

    def __len__(self) -> int:
        return len(self.observed) if self.chooser is not None else dict.__len__(self)

    def __contains__(self, name: object) -> bool:
        return name in self.observed if self.chooser is not None else dict.__contains__(self, name)

    def keys(self):  # noqa: ANN201
        return list(self)

    def items(self):  # noqa: ANN201
        return [(k, self[k]) for k in self]

    def values(self):  # noqa: ANN201
        return [self[k] for k in self]


def calibrate(graph: Graph, inputs: list[np.ndarray], method: str = "mse", percentile: float = 99.99,
              batch_size: int = 32, progress: Callable[[int], None] | None = None,
              time_budget_s: float = 120.0) -> Ranges:
    """Return {tensor name: (lo, hi)} for every activation of the float ``graph``."""
    return calibrate_choices(graph, inputs, [(method, percentile)], batch_size, progress, time_budget_s)[0]


def calibrate_choices(graph: Graph, inputs: list[np.ndarray], choices: list[tuple[str, float]],
                      batch_size: int = 32, progress: Callable[[int], None] | None = None,
                      time_budget_s: float = 120.0) -> list[Ranges]:
    """``calibrate`` for several (method, percentile) choices at once: one ``Ranges`` per
    choice, all from the same two passes over ``inputs``."""
    for method, _ in choices:
        if method not in METHODS:
            raise EdgeqError(f"unknown calibration method '{method}'; choose one of {', '.join(METHODS)}")
    lo, hi, floors = _observe_minmax(graph, inputs, batch_size, progress)
    lo.update({k: max(lo[k], f) for k, f in floors.items()})
    observed = {k: (lo[k], hi[k]) for k in lo}
    if all(method == "minmax" for method, _ in choices):
        return [_observed_ranges(observed) for _ in choices]
    edges = {k: (min(lo[k], 0.0), max(hi[k], 0.0)) for k in lo}
    hists = _observe_histograms(graph, inputs, batch_size, edges, floors, progress)

    def choose(name: str, how: str, percentile: float) -> tuple[float, float]:
        a, b = edges[name]
        if b <= a or how == "minmax":
            return lo[name], hi[name]
        return CHOOSERS[how](hists[name], percentile)

    out = []
    for method, percentile in choices:
        if method == "minmax":
            out.append(_observed_ranges(observed))
            continue
        if method != "auto":
            result = Ranges()
            result.chooser = lambda name, m=method, p=percentile: choose(name, m, p)
        else:
            candidates = {k: {m: choose(k, m, percentile) for m in ("minmax", "percentile", "mse", "entropy")}
                          for k in lo}
            sample = [_as_input(x[:AUTO_SAMPLES]) for x in inputs]
            result = Ranges(choose_by_layer_output_error(graph, sample, candidates, time_budget_s))
        result.observed = observed
        out.append(result)
    return out


def _observed_ranges(observed: dict[str, tuple[float, float]]) -> Ranges:
    result = Ranges(observed)
    result.observed = observed
    return result


def input_floor(graph: Graph, name: str, x: np.ndarray) -> float | None:
    """The value below which no consumer's output changes on the batch ``x`` of tensor ``name``
    (``OpDef.input_floor``; None unless every consumer has one and ``name`` is no output)."""
    users = graph.consumers(name)
    if not users or name in graph.outputs:
        return None
    found = [get_op(n.op).input_floor(n, i, x) for n in users for i, t in enumerate(n.inputs) if t == name]
    return None if any(f is None for f in found) else min(found)


def _stream(graph: Graph, inputs: list[np.ndarray], batch_size: int,
            fn: Callable[[str, np.ndarray], None], progress: Callable[[int], None] | None) -> None:
    n = inputs[0].shape[0]
    for start in range(0, n, batch_size):
        chunk = [_as_input(x[start:start + batch_size]) for x in inputs]
        interpreter.run(graph, chunk, on_tensor=fn)
        if progress:
            progress(len(chunk[0]))


def _as_input(x: np.ndarray) -> np.ndarray:
    """A batch of calibration data as the float graph takes it: float32, or the integers of an
    integer input (token ids) as they are."""
    x = np.asarray(x)
    return x.copy() if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def _observe_minmax(graph: Graph, inputs: list[np.ndarray], batch_size: int, progress: Callable[[int], None] | None
                    ) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Observed min and max of every tensor, and the floors (``input_floor``) that hold on every
    batch: a floor is relative to each batch's own values (a softmax's smallest row maximum)."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    floors: dict[str, float] = {}
    no_floor: set[str] = set()

    def record(name: str, x: np.ndarray) -> None:
        lo[name] = min(lo.get(name, np.inf), float(x.min()))
        hi[name] = max(hi.get(name, -np.inf), float(x.max()))
        if name not in no_floor:
            f = input_floor(graph, name, x)
            if f is None:
                no_floor.add(name)
                floors.pop(name, None)
            else:
                floors[name] = min(floors.get(name, np.inf), f)

    _stream(graph, inputs, batch_size, record, progress)
    return lo, hi, floors


def _observe_histograms(graph: Graph, inputs: list[np.ndarray], batch_size: int,
                        edges: dict[str, tuple[float, float]], floors: dict[str, float],
                        progress: Callable[[int], None] | None) -> dict[str, "Histogram"]:
    hists = {k: np.zeros(BINS, dtype=np.int64) for k in edges}
    exact_zeros = {k: 0 for k in edges}

    def record(name: str, x: np.ndarray) -> None:
        a, b = edges[name]
        if b > a:
            if name in floors:         # values below the floor count where they saturate
                x = np.maximum(x, np.float32(floors[name]))
            hists[name] += np.histogram(x, bins=BINS, range=(a, b))[0]
            exact_zeros[name] += int(np.count_nonzero(x == 0))

    _stream(graph, inputs, batch_size, record, progress)
    return {k: Histogram(hists[k], *edges[k], exact_zeros[k]) for k in edges}


@dataclass
class Histogram:
    """Value counts in BINS equal bins over [a, b] (a <= 0 <= b), plus the exact zeros among them."""
    counts: np.ndarray
    a: float
    b: float
    zeros: int = 0

    def without_exact_zeros(self) -> np.ndarray:
        """Counts with exact zeros (ReLU's, which int8 represents exactly) taken out of their bin."""
        c = self.counts.copy()
        zero_bin = int(np.clip(-self.a / (self.b - self.a) * BINS, 0, BINS - 1))
        c[zero_bin] -= min(self.zeros, c[zero_bin])
        return c


# -- range choosers on a histogram over [a, b] -------------------------------------------

def _percentile_range(h: Histogram, pct: float) -> tuple[float, float]:
    hist, a, b = h.counts, h.a, h.b
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
    q = quantize(centers, scale, zp).astype(np.float64)
    return float(np.sum(hist * ((q - zp) * scale - centers) ** 2))


def _clipping_fractions() -> np.ndarray:
    """The grid of clipping fractions the mse and entropy choosers search, each end on its own
    (one end when the data never goes below zero): geometric below one half (far outliers), fine
    steps near the full range."""
    return np.unique(np.concatenate([np.geomspace(0.01, 0.5, 30), np.linspace(0.5, 1.0, 26)]))


def _mse_range(h: Histogram, _pct: float) -> tuple[float, float]:
    """The ``_clipping_fractions`` grid's window of least ``quant_error``, each row of upper ends
    at once. The errors are summed in float32 (a relative error near 1e-6 only decides between
    windows that tie within it) as a product with the counts: half the time of float64 sums,
    and the search is most of a clipping calibration's cost."""
    a, b = h.a, h.b
    fracs = _clipping_fractions()
    centers = a + (np.arange(BINS) + 0.5) * (b - a) / BINS
    occupied = h.counts != 0              # empty bins add nothing to any cost
    centers = centers[occupied].astype(np.float32)
    hist = h.counts[occupied].astype(np.float32)
    best = (np.inf, a, b)
    for fl in (fracs if a < 0 else np.array([1.0])):
        lo = np.full(fracs.size, min(a * fl, 0.0))
        hi = np.maximum(b * fracs, 0.0)
        hi = np.where(hi - lo < 1e-8, lo + 1e-8, hi)
        scale = ((hi - lo) / 255.0).astype(np.float32)
        zp = np.clip(np.round(-128 - lo / scale.astype(np.float64)), -128, 127).astype(np.float32)
        # (clip(round(c / s) + zp) - zp) * s - c, the zero point moved onto the clip bounds
        err = np.round(centers[None, :] / scale[:, None])
        np.clip(err, (-128 - zp)[:, None], (127 - zp)[:, None], out=err)
        err *= scale[:, None]
        err -= centers[None, :]
        err *= err
        costs = err @ hist
        k = int(np.argmin(costs))
        if costs[k] < best[0]:
            best = (float(costs[k]), a * fl, b * fracs[k])
    return best[1], best[2]


def kl_divergence_after_quantization(hist: np.ndarray, a: float, b: float, lo: float, hi: float) -> float:
    """KL(P || Q) as in TensorRT's entropy calibration: P is the histogram inside [lo, hi] with
    the clipped mass folded onto the edge bins; Q is the histogram inside [lo, hi] *without*
    that mass, merged into the 256 int8 levels and spread back evenly over non-empty bins.
    Clipping a lot makes P's edges heavy where Q has little, which is what KL penalises."""
    width = (b - a) / BINS
    i0 = int(np.clip(np.floor((lo - a) / width), 0, BINS - 1))
    i1 = int(np.clip(np.ceil((hi - a) / width), i0 + 1, BINS))
    inside = hist[i0:i1].astype(np.float64)
    p = inside.copy()
    p[0] += hist[:i0].sum()
    p[-1] += hist[i1:].sum()
    if p.sum() == 0:
        return 0.0
    levels = np.minimum((np.arange(p.size) * 256) // p.size, 255)
    nonzero = inside > 0
    mass = np.bincount(levels, weights=inside, minlength=256)
    count = np.bincount(levels, weights=nonzero.astype(np.float64), minlength=256)
    q = np.where(nonzero, mass[levels] / np.maximum(count[levels], 1), 0.0)
    p = p / p.sum()
    q = q / max(q.sum(), 1e-30)
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / np.maximum(q[m], 1e-12))))


def _entropy_range(h: Histogram, _pct: float) -> tuple[float, float]:
    """The ``_clipping_fractions`` grid's window of least KL divergence, every window at once."""
    a, b = h.a, h.b
    fracs = _clipping_fractions()
    lo, hi = np.meshgrid(a * (fracs if a < 0 else np.array([1.0])), b * fracs, indexing="ij")
    lo, hi = lo.ravel(), hi.ravel()
    k = int(np.argmin(window_kls(h.without_exact_zeros(), a, b, lo, hi)))
    return float(lo[k]), float(hi[k])


def window_kls(counts: np.ndarray, a: float, b: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``kl_divergence_after_quantization`` of every clipping window [lo[k], hi[k]] at once, from
    prefix sums: P sums to the total count whatever the window (the clipped mass is folded in),
    Q to the window's count, and within one int8 level every non-empty bin has the same q, so a
    level's terms need only its sums of c, c log c and non-empty bins; the two edge bins, which
    carry the clipped mass, are then corrected one by one. 5-10x faster than one window at a time."""
    width = (b - a) / BINS
    i0 = np.clip(np.floor((lo - a) / width), 0, BINS - 1).astype(np.int64)
    i1 = np.clip(np.ceil((hi - a) / width), i0 + 1, BINS).astype(np.int64)
    c = counts.astype(np.float64)
    clogc = np.where(c > 0, c * np.log(np.where(c > 0, c, 1.0)), 0.0)
    cc, cl, cn = (np.concatenate([[0.0], np.cumsum(v)]) for v in (c, clogc, (c > 0).astype(np.float64)))
    total = cc[-1]
    n = i1 - i0
    bounds = i0[:, None] + (np.arange(257)[None, :] * n[:, None] + 255) // 256     # level j: [bounds_j, bounds_j+1)
    mass = np.diff(cc[bounds], axis=1)
    full = np.diff(cn[bounds], axis=1)
    lsum = np.diff(cl[bounds], axis=1)
    inside = cc[i1] - cc[i0]
    s = np.maximum(inside, 1e-30)
    # non-empty bins: sum over levels of (1/T) [sum c log c - mass log T - mass log(mass / (count S))]
    ratio = np.where(full > 0, mass / np.maximum(full, 1) / s[:, None], 1.0)
    level_terms = np.where(full > 0, lsum - mass * np.log(total) - mass * np.log(ratio), 0.0)
    kl = level_terms.sum(axis=1) / total

    def q_of(pos: np.ndarray) -> np.ndarray:      # normalized q of the bin at absolute position pos
        level = np.minimum(((pos - i0) * 256) // n, 255)
        rows = np.arange(len(i0))
        return np.where(c[pos] > 0, mass[rows, level] / np.maximum(full[rows, level], 1) / s, 0.0)

    def term(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.where(p > 0, (p / total) * np.log(np.where(p > 0, p / total, 1.0) / np.maximum(q, 1e-12)), 0.0)

    below, above = cc[i0], total - cc[i1]
    first, last = i0, i1 - 1
    same = first == last
    qf, ql = q_of(first), q_of(last)
    kl -= term(c[first], qf) + np.where(same, 0.0, term(c[last], ql))
    kl += np.where(same, term(c[first] + below + above, qf), term(c[first] + below, qf) + term(c[last] + above, ql))
    return np.where(total > 0, kl, 0.0)


CHOOSERS: dict[str, Callable[[Histogram, float], tuple[float, float]]] = {
    "percentile": _percentile_range, "mse": _mse_range, "entropy": _entropy_range}


# -- auto: pick per tensor by the error it causes at its consumers' outputs -----------------

def choose_by_layer_output_error(graph: Graph, sample: list[np.ndarray],
                                 candidates: dict[str, dict[str, tuple[float, float]]],
                                 time_budget_s: float) -> dict[str, tuple[float, float]]:
    """For each tensor, the candidate range minimising sum over consumers of
    ||consumer(fake_quant(T)) - consumer(T)||^2 (or the tensor's own error for graph outputs).
    Past the time budget the remaining tensors take the ``mse`` candidate."""
    values = interpreter.run(graph, sample, keep=True)
    start = time.perf_counter()
    chosen: dict[str, tuple[float, float]] = {}
    for name, cands in candidates.items():
        if time.perf_counter() - start > time_budget_s:
            chosen[name] = cands["mse"]
            continue
        best = (np.inf, cands["mse"])
        for rng in dict.fromkeys(cands.values()):   # distinct ranges only
            err = _consumer_error(graph, values, name, fake_quantize_range(values[name], *rng))
            if err < best[0]:
                best = (err, rng)
        chosen[name] = best[1]
    return chosen


def _consumer_error(graph: Graph, values: dict[str, np.ndarray], name: str, fq: np.ndarray) -> float:
    err = float(np.sum((fq - values[name]) ** 2)) if graph.is_graph_output(name) else 0.0
    for node in graph.consumers(name):
        args = [fq if n == name else (values[n] if n in values else graph.t(n).data) for n in node.inputs]
        out = get_op(node.op).run_float(node, graph, args)[0]
        ref = values[node.outputs[0]]
        err += float(np.sum((out - ref) ** 2)) / max(1e-12, float(np.mean(ref ** 2)))
    return err
