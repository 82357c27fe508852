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
    # the float inputs of the weighted layers are all this needs: the other tensors are dropped
    values = interpreter.run(fgraph, sample, keep={fnodes[n.name].inputs[0] for n in q.nodes
                                                   if get_op(n.op).weighted and n.name in fnodes})
    for node in q.nodes:
        # the float node's input: a 16x8 layer may read a requantized copy (mixed precision)
        if not get_op(node.op).weighted or node.name not in fnodes or fnodes[node.name].inputs[0] not in values:
            continue
        fnode = fnodes[node.name]
        shift = _mean_output_shift(fgraph, fnode, q, node, values[fnode.inputs[0]])
        b = q.t(node.inputs[2])
        scale = b.quant.scale.astype(np.float64)
        corrected = b.data.astype(np.float64) - np.round(shift / scale)
        limit = 2**47 if b.data.dtype == np.int64 else 2**31 - 1   # 16x8 layers have int64 biases
        new = q.add_constant(f"{b.name}_corrected", np.clip(corrected, -limit, limit - 1).astype(b.data.dtype))
        new.quant = b.quant
        node.inputs[2] = new.name
    q.prune()
    return q


def _mean_output_shift(fgraph: Graph, fnode: Node, q: Graph, qnode: Node, x: np.ndarray) -> np.ndarray:
    """Per output channel mean of (layer with dequantized weights - float layer), no activation."""
    plain = Node(fnode.op, fnode.inputs, fnode.outputs, {**fnode.attrs, "activation": None}, fnode.name)
    w_f, b_f = (fgraph.t(n).data for n in fnode.inputs[1:])
    wq = q.t(qnode.inputs[1])
    shape = [1] * wq.data.ndim
    shape[wq.quant.axis if wq.quant.per_channel else 0] = -1
    w_dq = (wq.data.astype(np.float64) * wq.quant.scale.astype(np.float64).reshape(shape)).astype(np.float32)
    op = get_op(fnode.op)
    y_f = op.run_float(plain, fgraph, [x, w_f, b_f])[0]
    y_q = op.run_float(plain, fgraph, [x, w_dq, b_f])[0]
    channel = op.output_channel_axis(fnode, fgraph) % y_f.ndim
    axes = tuple(i for i in range(y_f.ndim) if i != channel)
    return (y_q.astype(np.float64) - y_f).mean(axis=axes)
