"""The model-independent steps of a build: trace, float passes, calibration, quantization.

Cross-layer equalization and bias correction are tried and kept only where they raise the
output SQNR on a calibration sample ("on where they help"); each can be switched off."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from . import interpreter, metrics, mixed_precision
from .calibration import Ranges, calibrate
from .frontend import trace
from .ir import Graph
from .mixed_precision import PrecisionRequest
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
                    progress: Callable[[int], None] | None = None,
                    precision: PrecisionRequest | None = None) -> Graph:
    """Calibrate the float graph on ``calibration`` and return the quantized (NCHW) graph.

    options: ``equalization`` / ``bias_correction`` (default True: tried, kept if they help);
    ``clip_outputs`` (default False: graph outputs are not clipped, see ``unclipped_outputs``).
    precision: which activations are int16 (edgeq.mixed_precision); default all int8."""
    options = options or {}
    precision = precision or PrecisionRequest()
    precision.check()
    sample = [np.array(x[:SAMPLE], dtype=np.float32) for x in calibration]
    reference = interpreter.run(graph, sample)
    candidates = [("none", graph)]
    if options.get("equalization", True) and equalizable_pairs(graph):
        candidates.append(("equalized", equalize_cross_layer(graph)))
    best: tuple[float, Graph, Graph, dict, bool] | None = None
    decisions: dict[str, dict] = {}
    tried: list[tuple[str, Graph, Ranges]] = []
    for label, g in candidates:
        ranges = calibrate(g, calibration, method=method, percentile=percentile, progress=progress)
        if not options.get("clip_outputs", False):
            ranges = unclipped_outputs(g, ranges)
        tried.append((label, g, ranges))
        q = quantize(g, ranges, options)
        score = output_sqnr(graph, reference, q, sample)
        decisions[f"sqnr_db_{label}"] = score
        corrected = False
        if options.get("bias_correction", True):
            qb = correct_bias(g, q, sample)
            score_b = output_sqnr(graph, reference, qb, sample)
            decisions[f"sqnr_db_{label}_bias_corrected"] = score_b
            if score_b > score:
                q, score, corrected = qb, score_b, True
        q.meta["equalized"] = label == "equalized"
        q.meta["bias_corrected"] = corrected
        if best is None or score > best[0]:
            best = (score, q, g, ranges, corrected)
    assert best is not None
    _, q, g, ranges, corrected = best
    if precision.mode != "int8" or precision.layers:
        q = _mixed(graph, g, q, ranges, corrected, sample, options, precision, tried, reference)
    q.meta["passes"] = {"equalization": q.meta.get("equalized", False),
                        "bias_correction": q.meta.get("bias_corrected", False), **decisions}
    return q


def unclipped_outputs(graph: Graph, ranges: Ranges) -> Ranges:
    """Graph outputs keep their observed min/max whatever the method. A classifier's decision
    lives in the tail of its logits (the winning class), exactly what a clipping search trades
    away for lower mean error; measured on the digits, Fashion-MNIST and KWS models it never
    costs accuracy and gains on Fashion-MNIST (see benchmarks/accuracy.py)."""
    out = Ranges({**ranges, **{o: ranges.observed[o] for o in graph.outputs if o in ranges.observed}})
    out.observed = ranges.observed
    return out


def _mixed(fgraph: Graph, g: Graph, q8: Graph, ranges: Ranges, corrected: bool, sample: list[np.ndarray],
           options: dict, request: PrecisionRequest, tried: list[tuple[str, Graph, Ranges]],
           reference: dict[str, np.ndarray]) -> Graph:
    """Promote layers to 16x8 as ``request`` asks. ``g`` / ``ranges`` / ``corrected``: the float
    graph, ranges and bias-correction choice of the int8 winner ``q8``; ``tried``: every float
    graph candidate (equalized or not), since what suits int8 activations may not suit int16."""
    def make(layers: list[str], g: Graph = g, ranges: Ranges = ranges, corrected: bool = corrected) -> Graph:
        q = quantize(mixed_precision.promoted_graph(g, layers), ranges, options)
        return correct_bias(g, q, sample) if corrected else q

    if request.mode == "auto":
        scorer = mixed_precision.Scorer(fgraph, sample, request)
        q, steps, chosen, reached = mixed_precision.search(make, lambda: _sensitivity_order(g, q8, sample),
                                                           request, scorer)
        layers = [st.promoted for st in steps[1:chosen + 1]]
        meta = {"equalized": q8.meta["equalized"], "bias_corrected": corrected}
        info = {"mode": "auto", "target_sqnr_db": request.target_sqnr_db,
                "max_accuracy_drop": request.max_accuracy_drop, "target_met": reached, "chosen_step": chosen,
                "float_accuracy": scorer.float_accuracy, "steps": [s.to_dict() for s in steps]}
    else:
        layers = mixed_precision.candidates(g) if request.mode == "16x8" else \
            mixed_precision.resolve_layers(g, request.layers)
        best: tuple[float, Graph, dict] | None = None
        for label, gc, rc in tried:      # re-decide equalization and bias correction for 16x8
            for bc in (False, True) if options.get("bias_correction", True) else (False,):
                qc = make(layers, gc, rc, bc)
                score = output_sqnr(fgraph, reference, qc, sample)
                if best is None or score > best[0]:
                    best = (score, qc, {"equalized": label == "equalized", "bias_corrected": bc})
        assert best is not None
        _, q, meta = best
        info = {"mode": request.mode if not request.layers else "layers"}
    wide = [n.name for n in q.nodes if n.op != "requantize" and q.t(n.outputs[0]).dtype == "int16"]
    info.update({"promoted_layers": layers, "int16_layers": wide, "int16_tensors": sorted(q.meta.get("int16", [])),
                 "arena_bytes_int8": mixed_precision.arena_bytes(q8),
                 "arena_bytes": mixed_precision.arena_bytes(q)})
    q.meta.update(meta)
    q.meta["precision"] = info
    return q


def _sensitivity_order(g: Graph, q8: Graph, sample: list[np.ndarray]) -> list[str]:
    """Promotable layers, most sensitive first (output SQNR gained when the layer is kept in
    higher precision, on the calibration sample), execution order on ties."""
    from .sensitivity import layer_sensitivity
    sens = layer_sensitivity(g, q8, sample, None)
    names = mixed_precision.candidates(g)
    return sorted(names, key=lambda n: -sens.get(n, {}).get("higher_precision_gain_db", 0.0))


def output_sqnr(fgraph: Graph, reference: dict[str, np.ndarray], qgraph: Graph, sample: list[np.ndarray]) -> float:
    """Mean over outputs of the int8 reference's SQNR against float on ``sample`` (dB)."""
    qin = [interpreter.quantize_input(qgraph, i, x) for i, x in enumerate(sample)]
    out = interpreter.run(qgraph, qin)
    vals = [metrics.sqnr_db(reference[f], interpreter.dequantize(qgraph, o, out[o]))
            for f, o in zip(fgraph.outputs, qgraph.outputs)]
    return float(np.mean(np.minimum(vals, 200.0)))
