"""Fold a multiply / add / subtract by a constant (``OpDef.as_affine``) into the weighted layer
producing its input (exact in float: scale the weights and bias, or shift the bias), when the
constant is one value per output channel (or a scalar) and the layer has no other consumer nor
activation."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..ops import get_op


def fold_affine_constants(graph: Graph) -> Graph:
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        for node in list(g.nodes):
            if _fold(g, node):
                changed = True
    g.prune()
    return g


def _per_channel(g: Graph, layer: Node, const: np.ndarray) -> np.ndarray | None:
    """The constant as one value per output channel of ``layer``, None if it is not that."""
    out_shape = g.t(layer.outputs[0]).shape
    channels = g.t(layer.inputs[1]).shape[0]
    axis = get_op(layer.op).output_channel_axis(layer, g) % len(out_shape)
    if const.ndim > len(out_shape):
        return None
    c = const.reshape((1,) * (len(out_shape) - const.ndim) + const.shape)
    if any(d != 1 for i, d in enumerate(c.shape) if i != axis):
        return None
    return np.broadcast_to(c.reshape(-1), (channels,)).astype(np.float64)


def _fold(g: Graph, node: Node) -> bool:
    affine = get_op(node.op).as_affine(node, g)
    if affine is None:
        return False
    x, scale, shift = affine
    layer = g.producer(x)
    if layer is None or not get_op(layer.op).weighted or get_op(layer.op).filter_axis != 0 \
            or layer.attrs.get("activation") or len(g.consumers(x)) != 1 or g.is_graph_output(x):
        return False
    const = scale if scale is not None else shift
    if np.broadcast_shapes(g.t(x).shape, const.shape) != g.t(x).shape:
        return False
    c = _per_channel(g, layer, const)
    if c is None:
        return False
    w, b = (g.t(n).data.astype(np.float64) for n in layer.inputs[1:])
    if scale is not None:
        w = w * c.reshape((-1,) + (1,) * (w.ndim - 1))
        b = b * c
    else:
        b = b + c
    layer.inputs[1] = g.add_constant(f"{layer.name}_weight_folded", w.astype(np.float32)).name
    layer.inputs[2] = g.add_constant(f"{layer.name}_bias_folded", b.astype(np.float32)).name
    g.remove_node(node)
    g.replace_uses(node.outputs[0], x)
    return True
