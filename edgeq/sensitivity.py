"""Where does the int8 error come from? Per-layer sensitivity on a sample of the data.

* accumulated SQNR: the int8 reference against float at each layer's output (in build.py);
* layer-alone SQNR: the model output's SQNR when only that layer is quantized (its input,
  weights and output), everything else float;
* higher-precision effect: the change in accuracy (or output SQNR without labels) when that
  one layer is kept in float while the rest runs quantized (a fake-quant simulation).
"""
from __future__ import annotations

import numpy as np

from . import metrics
from .ir import Graph, Node
from .ops import get_op
from .quant import dequantize_constant, fake_quantize


SENSITIVITY_SAMPLES = 32   # enough to rank layers; the cost is two model runs per layer
SENSITIVITY_CHUNK = 8      # samples simulated at once (memory: three whole runs of a chunk)
#: which layers a build's report simulates: "top" (the default), the layers that lose the most
#: SQNR, a handful; "all": every layer that adds error of its own
SENSITIVITY_MODES = ("top", "all")


def dequantized_copy(qgraph: Graph) -> Graph:
    """A float copy of a quantized graph whose weights and biases are the dequantized integers,
    in the bodies of its loops too (a scan's step then runs its float kernels on dequantized
    weights: the simulation quantizes a loop's weights and the values entering and leaving it,
    not the activations inside each step)."""
    g = qgraph.copy()
    _dequantize_in_place(g)
    return g


def _dequantize_in_place(g: Graph) -> None:
    g.quantized = False
    for t in g.tensors.values():
        if t.is_constant and t.quant is not None:
            t.data = dequantize_constant(t.data, t.quant)
            t.dtype = "float32"
    for node in g.nodes:
        for body in get_op(node.op).bodies(node):
            _dequantize_in_place(body)


def _fq(qgraph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    if qgraph.t(name).quant is None:     # an index output (argmax) is not quantized
        return x
    return fake_quantize(x, *qgraph.t(name).quant.scalar(), qgraph.t(name).dtype)


def simulate(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray], quantized: set[str],
             dq: Graph | None = None) -> list[np.ndarray]:
    """Run the float graph, quantizing (fake-quant, dequantized integer weights) exactly the
    layers named in ``quantized`` and their inputs."""
    dq = dequantized_copy(qgraph) if dq is None else dq
    values = _Simulation(fgraph, qgraph, dq).run(inputs, quantized)
    return [values[o] for o in fgraph.outputs]


class _Simulation:
    """The float graph with some layers fake-quantized, able to start from the values of an
    earlier run: a run that differs from it only at node ``i`` (and where the quantized set
    differs only in that node) repeats nodes 0..i-1 exactly, so only node ``i`` and what depends on
    it are recomputed. The figures are those of full runs, bit for bit (same ops, same inputs)."""

    def __init__(self, fgraph: Graph, qgraph: Graph, dq: Graph) -> None:
        self.fgraph, self.qgraph, self.dq = fgraph, qgraph, dq
        self.dq_nodes = {n.name: n for n in dq.nodes}
        self.index = {n.name: i for i, n in enumerate(fgraph.nodes)}
        # what each node reads: its float inputs and, quantized, the sources of its dq inputs
        self.reads = []
        for fnode in fgraph.nodes:
            names = set(fnode.inputs)
            if fnode.name in self.dq_nodes:
                names |= {qgraph.range_source(n) for n in self.dq_nodes[fnode.name].inputs}
            self.reads.append(names)

    def run(self, inputs: list[np.ndarray], quantized: set[str], start: dict[str, np.ndarray] | None = None,
            changed: str | None = None) -> dict[str, np.ndarray]:
        """Every tensor's value. With ``start`` (the values of a run whose quantized set differs
        from ``quantized`` in the node ``changed`` alone) the nodes before ``changed``, and the
        later ones that do not depend on it, keep their values from ``start``."""
        if start is None:
            values = dict(zip(self.fgraph.inputs, inputs))
            first, dirty = 0, None
        else:
            values, first, dirty = dict(start), self.index[changed], set()
        for i in range(first, len(self.fgraph.nodes)):
            fnode = self.fgraph.nodes[i]
            if dirty is not None and i != first and not (self.reads[i] & dirty):
                continue
            outs = self._node(fnode, values, fnode.name in quantized)
            values.update(zip(fnode.outputs, outs))
            if dirty is not None:
                dirty.update(fnode.outputs)
        return values

    def _node(self, fnode: Node, values: dict[str, np.ndarray], quantized: bool) -> list[np.ndarray]:
        fgraph, qgraph, dq = self.fgraph, self.qgraph, self.dq
        if not quantized:
            args = [values[n] if n in values else fgraph.t(n).data for n in fnode.inputs]
            return get_op(fnode.op).run_float(fnode, fgraph, args)
        node = self.dq_nodes[fnode.name]
        # a 16x8 layer may read a requantized copy of a float-graph tensor: fake-quantize that
        args = [_fq(qgraph, n, values[qgraph.range_source(n)]) if qgraph.range_source(n) in values
                else dq.t(n).data for n in node.inputs]
        outs = get_op(node.op).run_float(node, dq, args)
        return [_fq(qgraph, o, y) for o, y in zip(node.outputs, outs)]


class _Score:
    """SQNR and accuracy of one simulated run, summed over chunks of samples: per output its
    energies (``metrics.SqnrSum``), and the count of correct top-1 answers. The figures are those
    of one run over all the samples (the same sums, in chunks)."""

    def __init__(self, n_outputs: int) -> None:
        self.sqnrs = [metrics.SqnrSum() for _ in range(n_outputs)]
        self.correct, self.count, self.classifies = 0, 0, True

    def add(self, reference: list[np.ndarray], outputs: list[np.ndarray], labels: np.ndarray | None) -> None:
        for total, r, o in zip(self.sqnrs, reference, outputs):
            total.add(r, o)
        self.classifies = self.classifies and labels is not None and outputs[0].ndim == 2
        if self.classifies:
            self.correct += int((outputs[0].argmax(axis=1) == labels).sum())
            self.count += len(labels)

    def sqnr(self) -> float:
        return float(np.mean([min(total.db(), 200.0) for total in self.sqnrs]))

    def accuracy(self) -> float | None:
        return self.correct / self.count if self.classifies and self.count else None


def adds_error(node: Node) -> bool:
    """Does quantizing this layer add error of its own? Not for ops that only move integers
    (``OpDef.lossless``: reshape, slice, max pooling)."""
    return not get_op(node.op).lossless


def layer_sensitivity(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray],
                      labels: np.ndarray | None = None,
                      layers: list[str] | None = None) -> dict[str, dict[str, float | None]]:
    """Per layer name: ``layer_alone_sqnr_db``; ``higher_precision_gain_db`` (output SQNR gained
    by keeping the layer in float) and ``higher_precision_gain_accuracy`` (with labels).
    ``layers``: the layers to measure (default: all); each costs two runs of the model.

    The samples go through in chunks of ``SENSITIVITY_CHUNK``: a restarted run needs every value
    of the all-float and the all-quantized run, so memory is three whole runs of one chunk."""
    float_names = {f.name for f in fgraph.nodes}
    names = [n.name for n in qgraph.nodes if n.name in float_names]
    measured = names if layers is None else [n for n in names if n in set(layers)]
    inputs = [x[:SENSITIVITY_SAMPLES] for x in inputs]
    labels = None if labels is None else labels[:SENSITIVITY_SAMPLES]
    sim = _Simulation(fgraph, qgraph, dequantized_copy(qgraph))   # the dequantized copy once
    everything = set(names)
    outputs = fgraph.outputs
    base = _Score(len(outputs))
    kept = {name: _Score(len(outputs)) for name in measured}
    alone = {name: _Score(len(outputs)) for name in measured}
    for start in range(0, inputs[0].shape[0], SENSITIVITY_CHUNK):
        chunk = [x[start:start + SENSITIVITY_CHUNK] for x in inputs]
        chunk_labels = None if labels is None else labels[start:start + SENSITIVITY_CHUNK]
        float_values = sim.run(chunk, set())
        base_values = sim.run(chunk, everything)
        reference = [float_values[o] for o in outputs]
        base.add(reference, [base_values[o] for o in outputs], chunk_labels)
        for name in measured:
            # each run differs from the all-float or the all-quantized one in this layer alone
            values = sim.run(chunk, everything - {name}, base_values, name)
            kept[name].add(reference, [values[o] for o in outputs], chunk_labels)
            values = sim.run(chunk, {name}, float_values, name)
            alone[name].add(reference, [values[o] for o in outputs], chunk_labels)
            del values
        del float_values, base_values
    base_sqnr, base_acc = base.sqnr(), base.accuracy()
    out = {}
    for name in measured:
        acc = kept[name].accuracy()
        out[name] = {
            "layer_alone_sqnr_db": alone[name].sqnr(),
            "higher_precision_gain_db": kept[name].sqnr() - base_sqnr,
            "higher_precision_gain_accuracy": None if acc is None or base_acc is None else acc - base_acc,
        }
    return out
