"""The model-independent steps of a build: trace, float passes, calibration, quantization.

Cross-layer equalization and bias correction are tried and kept only where they raise the
output SQNR on a calibration sample ("on where they help"); each can be switched off."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import interpreter, metrics
from .calibration import calibrate
from .frontend import trace
from .ir import Graph
from .passes import prepare_float_graph
from .passes.bias_correction import correct_bias
from .passes.equalize import equalizable_pairs, equalize_cross_layer
from .quantize import quantize

SAMPLE = 64


def float_graph(model: torch.nn.Module | torch.export.ExportedProgram,
                input_shapes: list[tuple[int, ...]] | None = None) -> Graph:
    """Trace and run the float passes (NCHW, batch norm folded, activations fused)."""
    return prepare_float_graph(trace(model, input_shapes))


def quantized_graph(graph: Graph, calibration: list[np.ndarray], method: str = "mse",
                    options: dict | None = None, percentile: float = 99.99,
                    progress: Callable[[int], None] | None = None) -> Graph:
    """Calibrate the float graph on ``calibration`` and return the quantized (NCHW) graph.

    options: ``equalization`` / ``bias_correction`` (default True: tried, kept if they help)."""
    options = options or {}
    sample = [np.array(x[:SAMPLE], dtype=np.float32) for x in calibration]
    reference = interpreter.run(graph, sample)
    candidates = [("none", graph)]
    if options.get("equalization", True) and equalizable_pairs(graph):
        candidates.append(("equalized", equalize_cross_layer(graph)))
    best: tuple[float, Graph] | None = None
    decisions: dict[str, dict] = {}
    for label, g in candidates:
        q = quantize(g, calibrate(g, calibration, method=method, percentile=percentile, progress=progress), options)
        score = output_sqnr(graph, reference, q, sample)
        decisions[f"sqnr_db_{label}"] = score
        if options.get("bias_correction", True):
            qb = correct_bias(g, q, sample)
            score_b = output_sqnr(graph, reference, qb, sample)
            decisions[f"sqnr_db_{label}_bias_corrected"] = score_b
            if score_b > score:
                q, score = qb, score_b
                q.meta["bias_corrected"] = True
        q.meta["equalized"] = label == "equalized"
        if best is None or score > best[0]:
            best = (score, q)
    assert best is not None
    q = best[1]
    q.meta["passes"] = {"equalization": q.meta.get("equalized", False),
                        "bias_correction": q.meta.get("bias_corrected", False), **decisions}
    return q


def output_sqnr(fgraph: Graph, reference: dict[str, np.ndarray], qgraph: Graph, sample: list[np.ndarray]) -> float:
    """Mean over outputs of the int8 reference's SQNR against float on ``sample`` (dB)."""
    qin = [interpreter.quantize_input(qgraph, i, x) for i, x in enumerate(sample)]
    out = interpreter.run(qgraph, qin)
    vals = [metrics.sqnr_db(reference[f], interpreter.dequantize(qgraph, o, out[o]))
            for f, o in zip(fgraph.outputs, qgraph.outputs)]
    return float(np.mean(np.minimum(vals, 200.0)))
