"""``--precision``: which activations run in int16 (16x8 layers), chosen by the user or searched.

* ``int8``: none (the default);
* ``16x8``: every activation that can be int16 (the input stays int8: it is quantized at the
  model boundary);
* ``auto`` (the build's default): the layers ranked by sensitivity (output SQNR gained when the layer is kept in
  higher precision, edgeq.sensitivity) are promoted one at a time, most sensitive first, and the
  search stops as soon as the model meets the target: an output SQNR (dB, against float) or a
  maximum accuracy drop (percentage points, with labelled eval data). Each step is measured with
  the integer reference itself, not a simulation, and its arena cost is recorded (the C
  target's static memory plan of the NHWC graph). Without a target given, the target is an
  output SQNR floor (``DEFAULT_FLOOR_DB``): a model that int8 keeps above it stays all int8 at
  no extra cost, one that int8 would lose gets 16x8 where it helps. Promotions the target
  cannot run (``accepts``: the target's own lowering and budget) are skipped and reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import interpreter, metrics
from .evaluation import output_sqnr, output_sqnrs, worst_then_mean
from .errors import EdgeqError
from .ir import Graph, Node
from .memory_plan import plan_memory
from .ops import get_op, with_bodies
from .passes import nhwc_graph
from .passes.bias_correction import correct_bias
from .passes.precision import carried_states, int16_capable, promote
from .quantize import quantize
from .sensitivity import layer_sensitivity
from .calibration import Ranges

MODES = ("int8", "16x8", "auto")
#: auto's output SQNR target (dB against float) when none is given: below it int8 noise is a
#: tenth of the signal, where classifiers and regressors visibly degrade
DEFAULT_FLOOR_DB = 20.0
#: at most this many layers are tried for promotion towards the default floor
DEFAULT_FLOOR_TRIES = 8
AUTO_EVAL_SAMPLES = 2000   # accuracy targets are measured on at most this many labelled samples


@dataclass
class PrecisionRequest:
    mode: str = "int8"
    layers: list[str] = field(default_factory=list)      # explicit promotions (layer or module names)
    target_sqnr_db: float | None = None
    max_accuracy_drop: float | None = None               # percentage points below float
    eval_inputs: list[np.ndarray] | None = None
    eval_labels: np.ndarray | None = None
    #: auto without a user target: the target is DEFAULT_FLOOR_DB (set by ``check``)
    floor_default: bool = False

    def check(self) -> None:
        if self.mode not in MODES:
            raise EdgeqError(f"unknown precision '{self.mode}'; choose one of {', '.join(MODES)}")
        if self.mode == "auto" and self.target_sqnr_db is None and self.max_accuracy_drop is None:
            self.target_sqnr_db, self.floor_default = DEFAULT_FLOOR_DB, True
        if self.max_accuracy_drop is not None and self.eval_labels is None:
            raise EdgeqError("--max-accuracy-drop needs labelled eval data: add --eval-data and --eval-labels, "
                             "or use --target-sqnr instead")


def candidates_of(graph: Graph) -> list[str]:
    """Layer names whose output can be int16, in execution order, then the loops' carried
    states that can be (named by the body's layer that writes the new state: promoting it
    promotes the state as a whole). Data-movement ops (reshape, pooling) are left out: their
    output is int16 exactly when their input is."""
    layers = [n.name for n in graph.nodes
              if int16_capable(graph, n.outputs[0]) and not get_op(n.op).same_quant_as_input]
    return layers + [node.name for node, _, _ in carried_states(graph)]


def _layers(graph: Graph) -> list[Node]:
    """The graph's nodes, then the body nodes that write a carried state."""
    return list(graph.nodes) + [node for node, _, _ in carried_states(graph)]


def resolve_layers(graph: Graph, names: list[str]) -> list[str]:
    """Layer names from user-given layer names or module paths (a module selects all its
    layers, its loops' states included)."""
    capable = set(candidates_of(graph))
    out: list[str] = []
    for name in names:
        hits = [n.name for n in _layers(graph) if n.name == name or n.module_path == name
                or n.module_path.startswith(name + ".")]
        hits = [h for h in hits if h in capable]
        if not hits:
            raise EdgeqError(f"--int16-layers: '{name}' is no layer or module with an int16 kernel; "
                             f"layers that can be int16: {', '.join(candidates_of(graph)) or 'none'}")
        out.extend(h for h in hits if h not in out)
    return out


def outputs_of(graph: Graph, layers: list[str]) -> list[str]:
    by_name = {n.name: n for n in _layers(graph)}
    return [by_name[name].outputs[0] for name in layers]


@dataclass
class SearchStep:
    promoted: str | None
    sqnr_db: float
    accuracy: float | None
    arena_bytes: int

    def to_dict(self) -> dict:
        return {"promoted": self.promoted, "output_sqnr_db": round(self.sqnr_db, 3),
                "accuracy": self.accuracy, "arena_bytes": self.arena_bytes}


def arena_bytes(qgraph: Graph) -> int:
    """The static arena the C target plans for this graph (bytes)."""
    return plan_memory(nhwc_graph(qgraph)).arena_size


class Scorer:
    """Output SQNR against float on a calibration sample, and accuracy on labelled eval data."""

    def __init__(self, fgraph: Graph, sample: list[np.ndarray], request: PrecisionRequest,
                 reference: dict[str, np.ndarray] | None = None) -> None:
        self.fgraph, self.sample = fgraph, sample
        self.reference = reference if reference is not None else interpreter.run(fgraph, sample)
        self.inputs = self.labels = None
        self.float_accuracy: float | None = None
        if request.eval_labels is not None and request.eval_inputs is not None:
            self.inputs = [x[:AUTO_EVAL_SAMPLES] for x in request.eval_inputs]
            self.labels = request.eval_labels[:AUTO_EVAL_SAMPLES]
            self.float_accuracy = self._accuracy(fgraph, self.inputs)

    def _accuracy(self, graph: Graph, inputs: list[np.ndarray]) -> float:
        if graph.quantized:
            inputs = [interpreter.quantize_input(graph, i, x) for i, x in enumerate(inputs)]
        outs = [o[graph.outputs[0]] for o in interpreter.run_batched(graph, inputs, 256)]
        return metrics.accuracy(np.concatenate(outs), self.labels)

    def score(self, qgraph: Graph) -> tuple[float, float | None]:
        sqnr = output_sqnr(self.fgraph, self.reference, qgraph, self.sample)
        acc = self._accuracy(qgraph, self.inputs) if self.inputs is not None else None
        return sqnr, acc


def met(request: PrecisionRequest, scorer: Scorer, sqnr: float, accuracy: float | None) -> bool:
    ok = True
    if request.target_sqnr_db is not None:
        ok = ok and sqnr >= request.target_sqnr_db
    if request.max_accuracy_drop is not None:
        assert accuracy is not None and scorer.float_accuracy is not None
        ok = ok and 100.0 * (scorer.float_accuracy - accuracy) <= request.max_accuracy_drop + 1e-9
    return ok


def search(make: Callable[[list[str]], Graph], order: Callable[[], list[str]], request: PrecisionRequest,
           scorer: Scorer, accepts: Callable[[Graph], str | None] | None = None,
           refused: list[dict] | None = None) -> tuple[Graph, list[SearchStep], int, bool]:
    """Promote ``order``'s layers one at a time until the target is met.

    ``make(layers)`` returns the quantized graph with those layers' outputs in int16; ``order()``
    ranks the candidates (called only when plain int8 misses the target). Returns the
    chosen graph, the steps (the first is plain int8), the index of the chosen step, and whether
    the target was met. When no step meets it, the best step is chosen (by accuracy, then SQNR,
    for an accuracy target; by SQNR otherwise). ``accepts(graph)`` gives the reason the target
    cannot run a step's graph (the layer is then left int8 and listed in ``refused``), or None."""
    promoted: list[str] = []
    q = make(promoted)
    sqnr, acc = scorer.score(q)
    steps = [SearchStep(None, sqnr, acc, arena_bytes(q))]
    if met(request, scorer, sqnr, acc):
        return q, steps, 0, True
    layers = order()
    for layer in layers[:DEFAULT_FLOOR_TRIES] if request.floor_default else layers:
        if met(request, scorer, sqnr, acc):
            return q, steps, len(steps) - 1, True
        trial = make(promoted + [layer])
        reason = accepts(trial) if accepts is not None else None
        if reason is not None:
            if refused is not None:
                refused.append({"layer": layer, "reason": reason})
            continue
        promoted.append(layer)
        q = trial
        sqnr, acc = scorer.score(q)
        steps.append(SearchStep(layer, sqnr, acc, arena_bytes(q)))
    if met(request, scorer, sqnr, acc):
        return q, steps, len(steps) - 1, True
    by_accuracy = request.max_accuracy_drop is not None
    best = max(range(len(steps)), key=lambda i: ((steps[i].accuracy or 0.0) if by_accuracy else 0.0, steps[i].sqnr_db))
    chosen = q if best == len(steps) - 1 else make([s.promoted for s in steps[1:best + 1]])
    return chosen, steps, best, False


def promoted_graph(fgraph: Graph, layers: list[str]) -> Graph:
    """The float graph with the outputs of ``layers`` promoted to int16."""
    return promote(fgraph, outputs_of(fgraph, layers))


@dataclass
class Candidate:
    """One way of quantizing: the float graph (equalized or not), its ranges, bias correction."""
    graph: Graph
    ranges: Ranges
    equalized: bool
    bias_corrected: bool = False


@dataclass
class Promotion:
    """The outcome of ``apply``: the chosen quantized graph, the candidate it came from, and the
    report's "precision" section."""
    graph: Graph
    source: Candidate
    info: dict


def apply(fgraph: Graph, winner: Candidate, q8: Graph, tried: list[Candidate], sample: list[np.ndarray],
          options: dict, request: PrecisionRequest, reference: dict[str, np.ndarray],
          accepts: Callable[[Graph], str | None] | None = None) -> Promotion:
    """Promote layers to 16x8 as ``request`` asks. ``winner`` / ``q8``: the int8 choice;
    ``tried``: every float graph tried, since what suits int8 activations may not suit int16:
    fixed promotions re-decide equalization and bias correction."""
    g, ranges, corrected = winner.graph, winner.ranges, winner.bias_corrected

    def make(layers: list[str], g: Graph = g, ranges: Ranges = ranges, corrected: bool = corrected) -> Graph:
        q = quantize(promoted_graph(g, layers), ranges, options)
        return correct_bias(g, q, sample) if corrected else q

    source = winner
    if request.mode == "auto" and not request.layers:      # named layers are promoted as named
        scorer = Scorer(fgraph, sample, request, reference)
        refused: list[dict] = []
        def order() -> list[str]:
            return sensitivity_order(g, q8, sample, lambda layers: scorer.score(make(layers))[0])

        q, steps, chosen, reached = search(make, order, request, scorer, accepts, refused)
        layers = [st.promoted for st in steps[1:chosen + 1]]
        info = {"mode": "auto", "default_floor": request.floor_default, "refused": refused,
                "target_sqnr_db": request.target_sqnr_db,
                "max_accuracy_drop": request.max_accuracy_drop, "target_met": reached, "chosen_step": chosen,
                "float_accuracy": scorer.float_accuracy, "steps": [s.to_dict() for s in steps]}
    else:
        layers = candidates_of(g) if request.mode == "16x8" else resolve_layers(g, request.layers)
        best: tuple[tuple[float, float], Graph, Candidate] | None = None
        for cand in tried:
            for bc in (False, True) if options.get("bias_correction", True) else (False,):
                qc = make(layers, cand.graph, cand.ranges, bc)
                score = worst_then_mean(output_sqnrs(fgraph, reference, qc, sample))   # as pipeline ranks
                if best is None or score > best[0]:
                    best = (score, qc, Candidate(cand.graph, cand.ranges, cand.equalized, bc))
        assert best is not None
        _, q, source = best
        info = {"mode": request.mode if not request.layers else "layers"}
    graphs = with_bodies(q)
    wide = [n.name for b in graphs for n in b.nodes if not get_op(n.op).internal and b.t(n.outputs[0]).dtype == "int16"]
    info.update({"promoted_layers": layers, "int16_layers": wide,
                 "int16_tensors": sorted(n for b in graphs for n, t in b.tensors.items() if t.int_type == "int16"),
                 "arena_bytes_int8": arena_bytes(q8), "arena_bytes": arena_bytes(q)})
    return Promotion(q, source, info)


def sensitivity_order(g: Graph, q8: Graph, sample: list[np.ndarray],
                      score: Callable[[list[str]], float] | None = None) -> list[str]:
    """Promotable layers, most sensitive first (output SQNR gained when the layer is kept in
    higher precision, on the calibration sample), execution order on ties.

    A loop's carried state is measured for real with ``score(layers)`` (the output SQNR of the
    integer reference with those layers promoted), since the simulation of layer_sensitivity
    keeps a loop's steps in float (without ``score`` its gain counts as 0)."""
    sens = layer_sensitivity(g, q8, sample, None)
    gain = {n: v.get("higher_precision_gain_db", 0.0) for n, v in sens.items()}
    states = [node.name for node, _, _ in carried_states(g)]
    if score is not None and states:
        base = score([])
        gain.update({s: score([s]) - base for s in states})
    return sorted(candidates_of(g), key=lambda n: -gain.get(n, 0.0))


def kept_int8(sqnr_db: float, request: PrecisionRequest, reason: str) -> dict:
    """The report's "precision" section when auto's default floor needed no search."""
    return {"mode": "auto", "default_floor": True, "target_sqnr_db": request.target_sqnr_db,
            "target_met": sqnr_db >= (request.target_sqnr_db or 0.0), "int8_sqnr_db": round(sqnr_db, 3),
            "searched": False, "reason": reason, "promoted_layers": [], "int16_layers": [], "int16_tensors": []}
