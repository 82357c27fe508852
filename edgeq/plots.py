"""Report plots (SVG, written by ``svg_chart``): per-layer SQNR, a tensor's histogram with its
chosen clipping range, the per-layer instruction profile and the C arena's memory timeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_write_bytes
from .svg_chart import Chart

BLUE, RED, GREEN, YELLOW, PINK, ORANGE = "#4477aa", "#cc3311", "#228833", "#ccbb44", "#ee6677", "#ee7733"


def _bottom_for(labels: list[str]) -> float:
    """Room under the axis for labels rotated by 70 degrees (about 3.6 px per character at 7 pt)."""
    return 20.0 + 3.6 * max((len(s) for s in labels), default=0)


def _save(data: bytes, path: Path) -> Path:
    atomic_write_bytes(path, data)
    return path


def sqnr_bar_chart(rows: list[dict], path: Path) -> Path:
    """Grouped bars per layer: accumulated SQNR (int8 reference vs float at that layer) and the
    model-output SQNR when only that layer is quantized (both capped at 80 dB)."""
    labels = [f"{r['module'] or r['layer']} ({r['op']})" for r in rows]
    acc = [min(r["sqnr_db"], 80.0) for r in rows]
    alone = [min(r.get("layer_alone_sqnr_db") or 0.0, 80.0) for r in rows]
    lo, hi = min([0.0, *acc, *alone]), max([1.0, *acc, *alone])
    pad = 0.05 * (hi - lo)
    chart = Chart(max(660.0, 60.0 * len(rows) + 220), 300 + _bottom_for(labels), -0.6, len(rows) - 0.4,
                  lo - (pad if lo < 0 else 0.0), hi + pad, title="Per-layer SQNR of the integer reference",
                  ylabel="SQNR vs float (dB, higher is better)", bottom=_bottom_for(labels))
    x = list(range(len(rows)))
    chart.bars([i - 0.2 for i in x], acc, 0.4, BLUE, "accumulated (this layer's output)")
    chart.bars([i + 0.2 for i in x], alone, 0.4, ORANGE, "layer alone (model output)")
    return _save(chart.render(list(zip(x, labels)), legend_corner="lower left"), path)


def tensor_histogram(values: np.ndarray, lo: float, hi: float, name: str, path: Path,
                     dtype: str = "int8") -> Path:
    """Histogram of a tensor's float values (200 bins, log counts) with its integer range's edges
    marked; the x axis spans the values and both edges."""
    v = values.ravel()
    counts, edges = np.histogram(v, bins=200)
    clipped = float(np.mean((v < lo) | (v > hi)))
    x0, x1 = min(float(edges[0]), lo), max(float(edges[-1]), hi)
    pad = 0.02 * ((x1 - x0) or 1.0)
    chart = Chart(770.0, 420.0, x0 - pad, x1 + pad, 0.5, max(1.0, float(counts.max())) * 1.6, log_y=True,
                  title=f"{name}: values on the sample ({100 * clipped:.3f} % clipped)",
                  xlabel="float value", ylabel="count (log)")
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    chart.bars(centres, counts.tolist(), float(edges[1] - edges[0]), BLUE)
    chart.vline(lo, RED, "5,3", f"{dtype} range min {lo:.3g}")
    chart.vline(hi, RED, "5,3", f"{dtype} range max {hi:.3g}")
    return _save(chart.render(grid=False), path)


def layer_profile_chart(rows: list[dict], path: Path) -> Path:
    """Bars per layer: guest instructions under QEMU (the per-layer profile), with each layer's
    instructions per MAC written above its bar where it has MACs."""
    labels = [f"{r['layer']} {r['op']}" for r in rows]
    counts = [r["instructions"] / 1e3 for r in rows]
    top = max([1e-3, *counts]) * 1.1
    chart = Chart(max(660.0, 44.0 * len(rows) + 220), 300 + _bottom_for(labels), -0.6, len(rows) - 0.4, 0.0, top,
                  title="Instructions per layer (numbers: per MAC)",
                  ylabel="thousand instructions (QEMU plugin count)", bottom=_bottom_for(labels))
    x = list(range(len(rows)))
    chart.bars(x, counts, 0.7, BLUE)
    for i, r in enumerate(rows):
        if r.get("instructions_per_mac"):
            chart.text(i, counts[i], f"{r['instructions_per_mac']:.2f}", 6.0)
    return _save(chart.render(list(zip(x, labels))), path)


def memory_timeline(timeline: dict, path: Path, tflm_arena: int | None = None) -> Path:
    """Bytes of the live arena tensors per layer (their sum: what a plan without overlaps needs
    at least) and the arena bytes they cover in the plan, with the plan's peak, the bound
    without overlaps and (when measured) TFLite Micro's arena for the same model."""
    steps = timeline["steps"]
    x = list(range(len(steps)))
    marks = [timeline["arena_bytes"], timeline["bound_without_overlap_bytes"], *(timeline["live_bytes"] or [0]),
             *(timeline["used_bytes"] or [0])] + ([tflm_arena] if tflm_arena is not None else [])
    shown = x if len(steps) <= 40 else x[:: max(1, len(steps) // 40)]
    labels = [str(steps[i]) for i in shown]
    chart = Chart(max(770.0, 24.0 * len(steps) + 330), 300 + _bottom_for(labels), -0.6, len(steps) - 0.4, 0.0,
                  max(1, *marks) * 1.25, title="Memory timeline of the C arena, layer by layer", ylabel="bytes",
                  bottom=_bottom_for(labels))
    chart.bars(x, list(timeline["live_bytes"]), 0.8, "#bbccee", "bytes live (sum of live tensors)")
    chart.step(x, list(timeline["used_bytes"]), BLUE, "arena bytes in use (this plan)")
    chart.hline(timeline["arena_bytes"], GREEN, label=f"arena (plan peak) {timeline['arena_bytes']:,} B")
    chart.hline(timeline["bound_without_overlap_bytes"], YELLOW, "5,3",
                f"bound without overlaps {timeline['bound_without_overlap_bytes']:,} B")
    if tflm_arena is not None:
        chart.hline(tflm_arena, PINK, "2,2", f"TFLite Micro arena (our .tflite, input/output in it) {tflm_arena:,} B")
    return _save(chart.render(list(zip(shown, labels))), path)
