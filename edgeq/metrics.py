"""Comparison metrics between integer outputs, and SQNR between float and dequantized values."""
from __future__ import annotations

import numpy as np


def compare(reference: list[np.ndarray], other: list[np.ndarray]) -> dict:
    """Per-sample exactness over all outputs, max |diff| in LSBs, top-1 agreement (first output)."""
    n = reference[0].shape[0]
    equal = np.ones(n, dtype=bool)
    max_diff = 0
    for r, o in zip(reference, other):
        if r.shape != o.shape:
            raise ValueError(f"output shape {o.shape} differs from the reference's {r.shape}")
        d = np.abs(r.astype(np.int64) - o.astype(np.int64)).reshape(n, -1)
        equal &= (d == 0).all(axis=1)
        max_diff = max(max_diff, int(d.max()) if d.size else 0)
    return {"samples": int(n), "exact_fraction": float(equal.mean()), "max_abs_diff_lsb": max_diff,
            "top1_agreement": top1_agreement(reference[0], other[0])}


def _is_index_output(a: np.ndarray) -> bool:
    """A 1-D integer output (one class index per sample, e.g. an argmax head)."""
    return a.ndim == 1 and np.issubdtype(a.dtype, np.integer)


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    if _is_index_output(a):
        return float((a.astype(np.int64) == b.astype(np.int64)).mean())
    if a.ndim != 2 or a.shape[1] < 2:
        return None
    return float((a.argmax(axis=1) == b.argmax(axis=1)).mean())


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float | None:
    if _is_index_output(outputs):
        return float((outputs.astype(np.int64) == labels).mean())
    if outputs.ndim != 2:
        return None
    return float((outputs.argmax(axis=1) == labels).mean())


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """10 log10(signal power / noise power); inf when identical."""
    return db_of(*energies(reference, approx))


def energies(reference: np.ndarray, approx: np.ndarray) -> tuple[float, float]:
    """(signal, noise): the float64 sums of reference^2 and (reference - approx)^2."""
    if np.shape(reference) != np.shape(approx):
        ref = reference.astype(np.float64)
        noise = float(np.sum((ref - approx.astype(np.float64)) ** 2))
        signal = float(np.sum(ref ** 2))
    else:   # the same sums, one float64 array at a time (squares in place)
        d = np.asarray(reference).astype(np.float64)
        d *= d
        signal = float(np.sum(d))
        d = np.asarray(reference).astype(np.float64)
        d -= np.asarray(approx).astype(np.float64, copy=False)
        d *= d
        noise = float(np.sum(d))
        del d
    return signal, noise


def db_of(signal: float, noise: float) -> float:
    """10 log10(signal / noise) in dB; inf without noise."""
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(max(signal, 1e-30) / noise)


class SqnrSum:
    """The SQNR of samples that arrive in chunks: each chunk's energies are summed, so the
    figure is that of all the samples at once (the same sums in another order)."""

    def __init__(self) -> None:
        self.signal = self.noise = 0.0

    def add(self, reference: np.ndarray, approx: np.ndarray) -> None:
        signal, noise = energies(reference, approx)
        self.signal += signal
        self.noise += noise

    def db(self) -> float:
        return db_of(self.signal, self.noise)
