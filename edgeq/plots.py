"""Report plots (PNG, matplotlib's Agg backend): per-layer SQNR, a tensor's histogram with
its chosen clipping range, and the C arena's memory timeline."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .files import atomic_write_bytes


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - a matplotlib Figure
    buf = io.BytesIO()
    # no timestamps or software tags in the PNG: same inputs, same bytes
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return path


def sqnr_bar_chart(rows: list[dict], path: Path) -> Path:
    """Grouped bars per layer: accumulated SQNR (int8 reference vs float at that layer) and the
    model-output SQNR when only that layer is quantized."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['module'] or r['layer']}\n({r['op']})" for r in rows]
    acc = [min(r["sqnr_db"], 80.0) for r in rows]
    alone = [min(r.get("layer_alone_sqnr_db") or 0.0, 80.0) for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.2))
    ax.bar(x - 0.2, acc, 0.4, label="accumulated (this layer's output)")
    ax.bar(x + 0.2, alone, 0.4, label="layer alone (model output)")
    ax.set_xticks(x, labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("SQNR vs float (dB, higher is better)")
    ax.set_title("Per-layer SQNR of the integer reference")
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path


def tensor_histogram(values: np.ndarray, lo: float, hi: float, name: str, path: Path,
                     dtype: str = "int8") -> Path:
    """Histogram of a tensor's float values (log counts) with its integer range's edges marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = values.ravel()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.hist(v, bins=200, color="#4477aa", log=True)
    for edge, label in ((lo, f"{dtype} range min"), (hi, f"{dtype} range max")):
        ax.axvline(edge, color="#cc3311", linestyle="--", label=f"{label} {edge:.3g}")
    clipped = float(np.mean((v < lo) | (v > hi)))
    ax.set_title(f"{name}: values on the sample ({100 * clipped:.3f} % clipped)")
    ax.set_xlabel("float value")
    ax.set_ylabel("count (log)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path


def layer_profile_chart(rows: list[dict], path: Path) -> Path:
    """Bars per layer: guest instructions under QEMU (the per-layer profile), with each layer's
    instructions per MAC written above its bar where it has MACs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['layer']} {r['op']}" for r in rows]
    counts = [r["instructions"] / 1e3 for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(rows) + 2), 4.2))
    ax.bar(x, counts, 0.7)
    for i, r in enumerate(rows):
        if r.get("instructions_per_mac"):
            ax.text(i, counts[i], f"{r['instructions_per_mac']:.2f}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, labels, rotation=70, ha="right", fontsize=7)
    ax.set_ylabel("thousand instructions (QEMU plugin count)")
    ax.set_title("Instructions per layer (numbers: per MAC)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path


def memory_timeline(timeline: dict, path: Path, tflm_arena: int | None = None) -> Path:
    """Bytes of the live arena tensors per layer (their sum: what a plan without overlaps needs
    at least) and the arena bytes they cover in the plan, with the plan's peak, the bound
    without overlaps and (when measured) TFLite Micro's arena for the same model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = timeline["steps"]
    x = np.arange(len(steps))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.22 * len(steps) + 3), 4.2))
    ax.bar(x, timeline["live_bytes"], 0.8, color="#bbccee", label="bytes live (sum of live tensors)")
    ax.step(x, timeline["used_bytes"], where="mid", color="#4477aa", label="arena bytes in use (this plan)")
    ax.axhline(timeline["arena_bytes"], color="#228833", label=f"arena (plan peak) {timeline['arena_bytes']:,} B")
    ax.axhline(timeline["bound_without_overlap_bytes"], color="#ccbb44", linestyle="--",
               label=f"bound without overlaps {timeline['bound_without_overlap_bytes']:,} B")
    if tflm_arena is not None:
        ax.axhline(tflm_arena, color="#ee6677", linestyle=":",
                   label=f"TFLite Micro arena (our .tflite, input/output in it) {tflm_arena:,} B")
    ticks = x if len(steps) <= 40 else x[:: max(1, len(steps) // 40)]
    ax.set_xticks(ticks, [steps[i] for i in ticks], rotation=70, ha="right", fontsize=6)
    ax.set_ylabel("bytes")
    ax.set_title("Memory timeline of the C arena, layer by layer")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path
