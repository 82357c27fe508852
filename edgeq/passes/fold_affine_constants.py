"""Fold a multiply / add / subtract by a constant into the conv2d, conv_transpose2d or linear
layer producing its input (exact in float: scale the weights and bias, or shift the bias), when
the constant is one value per output channel (or a scalar) and the layer has no other consumer
nor activation."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node

LAYERS = ("conv2d", "conv_transpose2d", "linear")


def fold_affine_constants(graph: Graph) -> Graph:
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        for node in list(g.nodes):
            if node.op in ("mul", "add", "sub") and _fold(g, node):
                changed = True
    g.prune()
    return g


def _per_channel(g: Graph, layer: Node, const: np.ndarray) -> np.ndarray | None:
    """The constant as one value per output channel of ``layer``, None if it is not that."""
    out_shape = g.t(layer.outputs[0]).shape
    channels = g.t(layer.inputs[1]).shape[0]
    axis = 1 if layer.op in ("conv2d", "conv_transpose2d") else len(out_shape) - 1
    if const.ndim > len(out_shape):
        return None
    c = const.reshape((1,) * (len(out_shape) - const.ndim) + const.shape)
    if any(d != 1 for i, d in enumerate(c.shape) if i != axis):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)


def _fold(g: Graph, node: Node) -> bool:
    ins = [g.t(n) for n in node.inputs]
    if sum(t.is_constant for t in ins) != 1 or node.attrs.get("activation"):
        return False
    k = 0 if ins[0].is_constant else 1
    if node.op == "sub" and k == 0:
        return False
    x = node.inputs[1 - k]
    layer = g.producer(x)
    if layer is None or layer.op not in LAYERS or layer.attrs.get("activation") \
            or len(g.consumers(x)) != 1 or g.is_graph_output(x):
        return False
    if np.broadcast_shapes(g.t(x).shape, ins[k].shape) != g.t(x).shape:
        return False
    c = _per_channel(g, layer, ins[k].data)
    if c is None:
        return False
    w, b = (g.t(n).data.astype(np.float64) for n in layer.inputs[1:])
    if node.op == "mul":
        w = w * c.reshape((-1,) + (1,) * (w.ndim - 1))
        b = b * c
    else:
        b = b + c if node.op == "add" else b - c
    layer.inputs[1] = g.add_constant(f"{layer.name}_weight_folded", w.astype(np.float32)).name
    layer.inputs[2] = g.add_constant(f"{layer.name}_bias_folded", b.astype(np.float32)).name
    g.remove_node(node)
    g.replace_uses(node.outputs[0], x)
    return True
