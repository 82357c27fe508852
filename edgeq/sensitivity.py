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


def dequantized_copy(qgraph: Graph) -> Graph:
    """A float copy of a quantized graph whose weights and biases are the dequantized integers."""
    g = qgraph.copy()
    g.quantized = False
    for t in g.tensors.values():
        if t.is_constant and t.quant is not None:
            t.data = dequantize_constant(t.data, t.quant)
            t.dtype = "float32"
    return g


def _fq(qgraph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    if qgraph.t(name).quant is None:     # an index output (argmax) is not quantized
        return x
    return fake_quantize(x, *qgraph.t(name).quant.scalar(), qgraph.t(name).dtype)


def simulate(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray], quantized: set[str],
             dq: Graph | None = None) -> list[np.ndarray]:
    """Run the float graph, quantizing (fake-quant, dequantized integer weights) exactly the
    layers named in ``quantized`` and their inputs."""
    dq = dequantized_copy(qgraph) if dq is None else dq
    dq_nodes = {n.name: n for n in dq.nodes}
    values = dict(zip(fgraph.inputs, inputs))
    for fnode in fgraph.nodes:
        node: Node = fnode
        graph = fgraph
        args = [values[n] if n in values else fgraph.t(n).data for n in fnode.inputs]
        if fnode.name in quantized:
            node = dq_nodes[fnode.name]
            graph = dq
            # a 16x8 layer may read a requantized copy of a float-graph tensor: fake-quantize that
            args = [_fq(qgraph, n, values[qgraph.range_source(n)]) if qgraph.range_source(n) in values
                    else dq.t(n).data for n in node.inputs]
        outs = get_op(node.op).run_float(node, graph, args)
        if fnode.name in quantized:
            outs = [_fq(qgraph, o, y) for o, y in zip(node.outputs, outs)]
        values.update(zip(fnode.outputs, outs))
    return [values[o] for o in fgraph.outputs]


def _sqnr(reference: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    return float(np.mean([min(metrics.sqnr_db(r, o), 200.0) for r, o in zip(reference, outputs)]))


def _accuracy(outputs: list[np.ndarray], labels: np.ndarray | None) -> float | None:
    if labels is None or outputs[0].ndim != 2:
        return None
    return float((outputs[0].argmax(axis=1) == labels).mean())


def adds_error(node: Node) -> bool:
    """Does quantizing this layer add error of its own? Not for ops that only move integers
    (``OpDef.lossless``: reshape, slice, max pooling)."""
    return not get_op(node.op).lossless


def layer_sensitivity(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray],
                      labels: np.ndarray | None = None,
                      layers: list[str] | None = None) -> dict[str, dict[str, float | None]]:
    """Per layer name: ``layer_alone_sqnr_db``; ``higher_precision_gain_db`` (output SQNR gained
    by keeping the layer in float) and ``higher_precision_gain_accuracy`` (with labels).
    ``layers``: the layers to measure (default: all); each costs two runs of the model."""
    float_names = {f.name for f in fgraph.nodes}
    names = [n.name for n in qgraph.nodes if n.name in float_names]
    measured = names if layers is None else [n for n in names if n in set(layers)]
    inputs = [x[:SENSITIVITY_SAMPLES] for x in inputs]
    labels = None if labels is None else labels[:SENSITIVITY_SAMPLES]
    dq = dequantized_copy(qgraph)   # once: each simulation below reuses it
    reference = simulate(fgraph, qgraph, inputs, set(), dq)
    everything = set(names)
    base = simulate(fgraph, qgraph, inputs, everything, dq)
    base_sqnr, base_acc = _sqnr(reference, base), _accuracy(base, labels)
    out = {}
    for name in measured:
        kept_float = simulate(fgraph, qgraph, inputs, everything - {name}, dq)
        acc = _accuracy(kept_float, labels)
        out[name] = {
            "layer_alone_sqnr_db": _sqnr(reference, simulate(fgraph, qgraph, inputs, {name}, dq)),
            "higher_precision_gain_db": _sqnr(reference, kept_float) - base_sqnr,
            "higher_precision_gain_accuracy": None if acc is None else acc - base_acc,
        }
    return out
