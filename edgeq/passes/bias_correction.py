"""Empirical bias correction (Nagel et al., 2019) on a quantized graph.

Quantizing weights shifts each output channel's mean: E[x W_q] != E[x W]. Measured on float
calibration activations, that per-channel shift is subtracted from the layer's bias, which is
then re-quantized at the same scale (int32, or int64 in 16x8 layers)."""
from __future__ import annotations

import numpy as np

from .. import interpreter
from ..ir import Graph, Node
from ..ops import get_op



def correct_bias(fgraph: Graph, qgraph: Graph, sample: list[np.ndarray]) -> Graph:
    """Return a copy of ``qgraph`` with biases corrected using float activations of ``sample``."""
    q = qgraph.copy()
    fnodes = {n.name: n for n in fgraph.nodes}
    # each weighted layer's shift is measured as the float run produces the layer's input, which
    # is then dropped: no activation is held past its last use
    # (a 16x8 layer may read a requantized copy: its float node's input is the one measured)
    readers: dict[str, list[Node]] = {}
    for node in q.nodes:
        if get_op(node.op).weighted and node.name in fnodes:
            readers.setdefault(fnodes[node.name].inputs[0], []).append(node)
    shifts: dict[str, np.ndarray] = {}

    def measure(name: str, value: np.ndarray) -> None:
        for node in readers.get(name, ()):
            shifts[node.name] = _mean_output_shift(fgraph, fnodes[node.name], q, node, value)

    interpreter.run(fgraph, sample, on_tensor=measure)
    for node in q.nodes:
        if node.name not in shifts:
            continue
        b = q.t(node.inputs[2])
        scale = b.quant.scale.astype(np.float64)
        corrected = b.data.astype(np.float64) - np.round(shifts[node.name] / scale)
        limit = 2**47 if b.data.dtype == np.int64 else 2**31 - 1   # 16x8 layers have int64 biases
        new = q.add_constant(f"{b.name}_corrected", np.clip(corrected, -limit, limit - 1).astype(b.data.dtype))
        new.quant = b.quant
        node.inputs[2] = new.name
    q.prune()
    return q


def _mean_output_shift(fgraph: Graph, fnode: Node, q: Graph, qnode: Node, x: np.ndarray) -> np.ndarray:
    """Per output channel mean of (layer with dequantized weights - float layer), no activation:
    the layer is linear in its weights, so that is the mean of the layer run with the weights'
    quantization error and no bias, one run (and no cancellation between two large outputs)."""
    plain = Node(fnode.op, fnode.inputs, fnode.outputs, {**fnode.attrs, "activation": None}, fnode.name)
    w_f, b_f = (fgraph.t(n).data for n in fnode.inputs[1:])
    wq = q.t(qnode.inputs[1])
    shape = [1] * wq.data.ndim
    shape[wq.quant.axis if wq.quant.per_channel else 0] = -1
    w_dq = wq.data.astype(np.float64) * wq.quant.scale.astype(np.float64).reshape(shape)
    error = (w_dq - w_f.astype(np.float64)).astype(np.float32)
    op = get_op(fnode.op)
    y = op.run_float(plain, fgraph, [x, error, np.zeros_like(b_f)])[0]
    channel = op.output_channel_axis(fnode, fgraph) % y.ndim
    axes = tuple(i for i in range(y.ndim) if i != channel)
    return y.astype(np.float64).mean(axis=axes)
