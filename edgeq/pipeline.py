"""The model-independent steps of a build, top to bottom: trace, float passes, calibrate, try the
accuracy passes, quantize, then mixed precision where asked.

Cross-layer equalization, bias correction and near-minmax ranges are tried and kept only where
they raise the output SQNR on a calibration sample ("on where they help"; the worst output
first, ``evaluation.worst_then_mean``); each can be switched off. The
result (``Quantization``) records every decision, so later steps never redo them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from . import interpreter, mixed_precision
from .calibration import Ranges, calibrate_choices
from .evaluation import cross_fitted_sqnrs, output_sqnr, output_sqnrs, worst_then_mean
from .frontend import trace
from .ir import Graph
from .mixed_precision import Candidate, PrecisionRequest
from .ops import get_op
from .parallel import in_parallel
from .passes import prepare_float_graph
from .passes.adaround import DEFAULT_BUDGET_S, learn_rounding, learnable
from .passes.bias_correction import FoldShifts, correct_bias, cross_fitted_correction
from .passes.equalize import equalizable_pairs, equalize_cross_layer
from .quantize import quantize

SAMPLE = 64
#: calibration samples learned rounding fits the weights to (more than SAMPLE: a linear layer
#: has more weights than a small sample has outputs, and would fit the sample's noise)
ROUNDING_SAMPLES = 256
HELD_OUT_MIN = 16
#: the second range choice every build tries besides its method: clip only the rarest values
#: (0.001 % at each end). MSE-optimal clipping of a shared trunk tensor cuts tails that a
#: regression head reads (a face detector's box and landmarks lost 0.7-1 dB against ONNX Runtime's
#: 99.999 percentile, benchmarks/results/issue17_face_heads.md); near-minmax ranges keep them
WIDE = ("percentile", 99.999)
#: the third: KL-divergence ranges (TensorRT's calibration). Where one tensor carries several
#: heads of unlike ranges (a face detector's logits, box and landmarks sliced from one linear
#: layer), neither the MSE nor the near-minmax ranges of the trunk gave the box head ONNX
#: Runtime's SQNR (-0.86 dB against its Percentile); the entropy ranges did (+0.95 dB), and the
#: worst-output ranking picks them (benchmarks/results/issue17_face_heads.md, round 3). Tried by
#: default on models with several outputs only: none of the 19 single-output zoo models kept
#: them, and the candidate costs ~1 s of a 3-head face model's 2.3 s quantization
ENTROPY = ("entropy", 99.99)


@dataclass
class Quantization:
    """What ``quantize_model`` produced and decided."""
    float_graph: Graph                     # the traced float graph after the float passes
    quantized_float_graph: Graph           # the float graph the integers come from (equalized or not)
    ranges: Ranges
    graph: Graph                           # the quantized (NCHW) graph
    equalized: bool = False
    bias_corrected: bool = False
    scores: dict[str, float] = field(default_factory=dict)   # output SQNR (dB) of each candidate
    #: which ranges were kept: the method's (e.g. "mse") or the wide candidate's ("percentile 99.999")
    range_choice: str = ""
    precision: dict[str, Any] = field(default_factory=lambda: {"mode": "int8"})
    #: the weight rounding ("nearest" or "adaround") and, for learned rounding, its budget and
    #: the per-layer rows of ``passes.adaround.LayerRounding``
    rounding: dict[str, Any] = field(default_factory=lambda: {"method": "nearest"})

    def passes_summary(self) -> dict[str, Any]:
        """The report's "quantization_passes" section."""
        return {"equalization": self.equalized, "bias_correction": self.bias_corrected,
                "ranges": self.range_choice, "rounding": self.rounding["method"], **self.scores}


@dataclass
class Prequantized:
    """What a model that brings its own quantization (``edgeq.qat``'s module) hands
    ``edgeq.build``, which then neither traces nor quantizes: the quantization, the traced float
    graph (input checks), the label written into artifacts, a float module (the report's float
    outputs and latency), the quantizer options it was made with, and its own integer outputs
    for input integers (NCHW), which the build checks against the reference interpreter."""
    quantization: Quantization
    float_graph: Graph
    label: str
    float_model: torch.nn.Module
    options: dict
    integer_outputs: Callable[[list[np.ndarray]], list[np.ndarray]]


def float_graph(model: torch.nn.Module | torch.export.ExportedProgram,
                input_shapes: list[tuple[int, ...]] | None = None,
                integer_inputs: list[bool] | None = None) -> Graph:
    """Trace and run the float passes (NCHW, batch norm folded, activations fused)."""
    return prepare_float_graph(trace(model, input_shapes, integer_inputs))


def quantize_model(graph: Graph, calibration: list[np.ndarray], method: str = "mse",
                   options: dict | None = None, percentile: float = 99.99,
                   progress: Callable[[int], None] | None = None,
                   precision: PrecisionRequest | None = None,
                   accepts: Callable[[Graph], str | None] | None = None) -> Quantization:
    """Calibrate the float graph on ``calibration`` and quantize it.

    options: ``equalization`` / ``bias_correction`` (default True: tried, kept if they help);
    ``wide_ranges`` / ``entropy_ranges`` (ranges clipping only the rarest values, ``WIDE``, by
    default, and KL ranges, ``ENTROPY``, by default on models with several outputs, are tried
    besides the method's when the method clips, kept if they rank higher);
    ``clip_outputs`` (default False: graph outputs are not clipped, see ``unclipped_outputs``);
    ``rounding``: "nearest" (default) or "adaround" (learned weight rounding of the chosen
    candidate within ``rounding_budget`` seconds, before its bias correction; int8 builds).
    precision: which activations are int16 (edgeq.mixed_precision); default all int8.
    accepts: for ``--precision auto``, the reason the target cannot run a quantized graph, or None.

    Candidates (the method's ranges on the graph equalized or not, then ``WIDE`` and ``ENTROPY``
    ranges on the winner's graph; each bias corrected or not) are ranked by ``evaluation.worst_then_mean`` of
    their per-output SQNR on the calibration sample (a bias-corrected variant cross-fitted:
    each quarter of the sample run with the correction measured on the other three)."""
    options = options or {}
    precision = precision or PrecisionRequest()
    precision.check()
    sample = [_sample(x[:SAMPLE]) for x in calibration]
    reference = interpreter.run(graph, sample)
    graphs = [(graph, False)]
    if options.get("equalization", True) and equalizable_pairs(graph):
        graphs.append((equalize_cross_layer(graph), True))
    choices = [(method, percentile)]
    if method not in ("minmax", "percentile"):      # the method clips: near-minmax and KL ranges too
        choices += [c for c, key in ((WIDE, "wide_ranges"), (ENTROPY, "entropy_ranges"))
                    if options.get(key, c is WIDE or len(graph.outputs) > 1) and c[0] != method]
    candidates: list[Candidate] = []
    best: Quantization | None = None
    best_key = (-np.inf, -np.inf)
    scores: dict[str, float] = {}
    best_plain: Graph | None = None
    measured: dict[int, FoldShifts] = {}      # bias correction's measurement per float graph (by id)

    def usable(g: Graph, ranges: Ranges) -> Ranges:
        return ranges if options.get("clip_outputs", False) else unclipped_outputs(g, ranges)

    def ranked(g: Graph, ranges: Ranges, side_by_side: bool) -> list[tuple[Graph, bool, list[float]]]:
        """Quantized, bias corrected where asked, each with its per-output SQNR (any thread;
        ``side_by_side``: the two variants on two threads)."""
        q = quantize(g, ranges, options)
        tasks = [lambda: (q, False, output_sqnrs(graph, reference, q, sample))]
        if options.get("bias_correction", True):
            def corrected() -> tuple[Graph, bool, list[float]]:
                # other ranges on the same graph quantize its weights alike: one measurement
                fitted = cross_fitted_correction(g, q, sample, measured=measured.get(id(g)))
                measured.setdefault(id(g), fitted.shifts)
                return fitted.graph, True, cross_fitted_sqnrs(graph, reference, fitted.folds, sample)
            tasks.append(corrected)
        return in_parallel(tasks) if side_by_side else [task() for task in tasks]

    def consider(g: Graph, equalized: bool, ranges: Ranges, choice: tuple[str, float],
                 tried: list[tuple[Graph, bool, list[float]]]) -> None:
        """Rank a candidate's variants against the best so far, in candidate order."""
        nonlocal best, best_key, best_plain
        candidates.append(Candidate(g, ranges, equalized))
        label = ("equalized" if equalized else "none") + ("" if choice == choices[0] else
                                                          "_wide" if choice == WIDE else f"_{choice[0]}")
        plain = tried[0][0]
        for qc, corrected, per_output in tried:
            scores[f"sqnr_db_{label}" + ("_bias_corrected" if corrected else "")] = float(np.mean(per_output))
            rank = worst_then_mean(per_output)
            if rank > best_key:
                best_key, best_plain = rank, plain
                best = Quantization(graph, g, ranges, qc, equalized, corrected)
                best.range_choice = choice[0] if choice[0] != "percentile" else f"percentile {choice[1]:g}"

    def calibrated(g: Graph) -> tuple[list[Ranges], list[tuple[Graph, bool, list[float]]]]:
        ranges_list = calibrate_choices(g, calibration, choices, progress=progress)
        ranges_list[0] = usable(g, ranges_list[0])
        return ranges_list, ranked(g, ranges_list[0], side_by_side=len(graphs) == 1)

    # the method's ranges on each graph (plain, equalized): independent, so side by side
    evaluated = in_parallel([lambda g=g: calibrated(g) for g, _ in graphs])
    others: dict[bool, list[Ranges]] = {}
    for (g, equalized), (ranges_list, tried) in zip(graphs, evaluated):
        consider(g, equalized, ranges_list[0], choices[0], tried)
        others[equalized] = ranges_list[1:]
    if len(choices) > 1:             # the other ranges on the graph that won: equalization is decided
        assert best is not None
        g, equalized = best.quantized_float_graph, best.equalized
        alternatives = [usable(g, r) for r in others[equalized]]
        if len(alternatives) == 1:                 # its two variants on two threads
            tried_alternatives = [ranked(g, alternatives[0], side_by_side=True)]
        else:                                      # one alternative per thread
            tried_alternatives = in_parallel([lambda r=r: ranked(g, r, False) for r in alternatives])
        for choice, ranges, tried in zip(choices[1:], alternatives, tried_alternatives):
            consider(g, equalized, ranges, choice, tried)
    assert best is not None
    best.scores = scores
    adaround = options.get("rounding", "nearest") == "adaround"
    int8_first = (precision.mode == "int8" or precision.floor_default) and not precision.layers
    if adaround and int8_first:
        _learned_rounding(best, best_plain, calibration, sample, options)
    int8_sqnr = best_key[1]       # the mean over outputs, as auto's search measures its steps
    if precision.floor_default and not precision.layers and (int8_sqnr >= (precision.target_sqnr_db or 0.0) or adaround):
        why = "learned rounding is int8-only" if adaround else "int8 meets the floor"
        best.precision = mixed_precision.kept_int8(int8_sqnr, precision, why)
    elif precision.mode != "int8" or precision.layers:
        winner = Candidate(best.quantized_float_graph, best.ranges, best.equalized, best.bias_corrected)
        promo = mixed_precision.apply(graph, winner, best.graph, candidates, sample, options, precision, reference,
                                      accepts)
        best.graph, best.precision = promo.graph, promo.info
        best.quantized_float_graph, best.ranges = promo.source.graph, promo.source.ranges
        best.equalized, best.bias_corrected = promo.source.equalized, promo.source.bias_corrected
    return best


def _learned_rounding(best: Quantization, plain: Graph, calibration: list[np.ndarray], sample: list[np.ndarray],
                      options: dict) -> None:
    """AdaRound the chosen candidate's weights (``plain``: its graph before bias correction),
    bias-correct the result where that helps, and keep it where its output SQNR beats nearest
    rounding's on calibration samples it was not fitted to (the last quarter, at most SAMPLE;
    with fewer than HELD_OUT_MIN left, on the sample): lower reconstruction errors layer by
    layer need not add up at the output, and a layer with more weights than its sample has
    outputs fits the sample's noise."""
    budget = float(options.get("rounding_budget", DEFAULT_BUDGET_S))
    n = calibration[0].shape[0]
    hold = min(SAMPLE, n // 4) if n // 4 >= HELD_OUT_MIN else 0
    fit = [_sample(x[:min(n - hold, ROUNDING_SAMPLES)]) for x in calibration]
    check = [_sample(x[n - hold:]) for x in calibration] if hold else sample
    graph, fgraph = best.float_graph, best.quantized_float_graph
    reference = interpreter.run(graph, check)
    nearest_score = output_sqnr(graph, reference, best.graph, check)
    q, rows = learn_rounding(fgraph, plain, fit, budget)
    score = output_sqnr(graph, reference, q, check)
    corrected = False
    if options.get("bias_correction", True):
        qb = correct_bias(fgraph, q, sample)
        score_b = output_sqnr(graph, reference, qb, check)
        if score_b > score:
            q, score, corrected = qb, score_b, True
    kept = score > nearest_score
    if kept:
        best.graph, best.bias_corrected = q, corrected
    best.rounding = {"method": "adaround" if kept else "nearest", "tried": "adaround", "kept": kept,
                     "sqnr_db_nearest": float(nearest_score), "sqnr_db_adaround": float(score),
                     "checked_on": f"{hold} held-out calibration samples" if hold else
                     f"the {check[0].shape[0]}-sample calibration sample (too few samples to hold out)",
                     "budget_s": budget, "samples": int(fit[0].shape[0]),
                     "time_s": float(sum(r.time_s for r in rows)), "cut_short": any(r.cut_short for r in rows),
                     "stopped_by_clock": [r.layer for r in rows if r.stopped_by_clock],
                     "layers": [r.row() for r in rows],
                     "skipped": [n.name for n in plain.nodes if get_op(n.op).weighted and not learnable(n, plain)]}


def _sample(x: np.ndarray) -> np.ndarray:
    """A writable float32 copy of calibration data (integer inputs, token ids, keep their type)."""
    x = np.asarray(x)
    return x.copy() if np.issubdtype(x.dtype, np.integer) else x.astype(np.float32)


def quantized_graph(graph: Graph, calibration: list[np.ndarray], method: str = "mse",
                    options: dict | None = None, percentile: float = 99.99,
                    progress: Callable[[int], None] | None = None,
                    precision: PrecisionRequest | None = None) -> Graph:
    """``quantize_model(...).graph``: the quantized graph alone."""
    return quantize_model(graph, calibration, method, options, percentile, progress, precision).graph


def unclipped_outputs(graph: Graph, ranges: Ranges) -> Ranges:
    """Graph outputs keep their observed min/max whatever the method. A classifier's decision
    lives in the tail of its logits (the winning class), exactly what a clipping search trades
    away for lower mean error; measured on the digits, Fashion-MNIST and KWS models it never
    costs accuracy and gains on Fashion-MNIST (see benchmarks/accuracy.py).

    An output that carries its input's quantization (``same_quant_as_input``: a reshape,
    transpose or slice of the last layer, e.g. a landmark head's ``view(-1, 5, 2)``) is quantized
    with its source's range, so the source keeps its observed range too."""
    keep: dict[str, tuple[float, float]] = {}
    for name in graph.outputs:
        while True:
            if name in ranges.observed:
                keep[name] = ranges.observed[name]
            node = graph.producer(name)
            if node is None or not get_op(node.op).same_quant_as_input or graph.t(node.inputs[0]).is_constant:
                break
            name = node.inputs[0]
    return ranges.with_values(keep)
