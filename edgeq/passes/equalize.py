"""Cross-layer equalization (Nagel et al., 2019) on the float graph.

For a layer pair L1 -> (ReLU or nothing) -> L2 where L2 is L1's only consumer, output channel i
of L1 is divided by s_i and input channel i of L2 multiplied by s_i, with
s_i = sqrt(r1_i / r2_i) (r = max |weight| of the channel). ReLU commutes with a positive scale,
so the float function is unchanged, while per-channel weight ranges become balanced: what
depthwise-separable nets need before per-tensor activation quantization."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..ops import get_op

ROUNDS = 4


def equalize_cross_layer(graph: Graph) -> Graph:
    g = graph.copy()
    pairs = equalizable_pairs(g)
    for _ in range(ROUNDS):
        for first, second in pairs:
            _equalize_pair(g, first, second)
    return g


def equalizable_pairs(g: Graph) -> list[tuple[Node, Node]]:
    pairs = []
    for first in g.nodes:
        if not get_op(first.op).equalizable or g.is_graph_output(first.outputs[0]):
            continue
        act = first.attrs.get("activation")
        if act is not None and act != {"min": 0.0, "max": None}:
            continue   # ReLU6 / hardtanh do not commute with scaling
        users = g.consumers(first.outputs[0])
        if len(users) != 1 or users[0].op != first.op or users[0].inputs[0] != first.outputs[0]:
            continue
        second = users[0]
        if not all(_is_plain(n, g) or _is_depthwise(n, g) for n in (first, second)):
            continue
        pairs.append((first, second))
    return pairs


def _is_plain(node: Node, g: Graph) -> bool:
    return node.attrs.get("groups", 1) == 1


def _is_depthwise(node: Node, g: Graph) -> bool:
    """A grouped conv with one input and one output channel per group."""
    w = g.t(node.inputs[1]).shape
    return get_op(node.op).depthwise_form is not None and node.attrs["groups"] == w[0] and w[1] == 1


def _equalize_pair(g: Graph, first: Node, second: Node) -> None:
    w1, b1, w2 = (g.t(n).data.astype(np.float64) for n in (first.inputs[1], first.inputs[2], second.inputs[1]))
    r1 = np.abs(w1.reshape(w1.shape[0], -1)).max(axis=1)
    if _is_depthwise(second, g):
        r2 = np.abs(w2.reshape(w2.shape[0], -1)).max(axis=1)          # channel i is its own group
        bshape2 = (-1,) + (1,) * (w2.ndim - 1)
    else:
        r2 = np.abs(np.moveaxis(w2, 1, 0).reshape(w2.shape[1], -1)).max(axis=1)
        bshape2 = (1, -1) + (1,) * (w2.ndim - 2)
    if r1.shape != r2.shape:
        return
    ok = (r1 > 0) & (r2 > 0)
    s = np.where(ok, np.sqrt(np.where(ok, r1, 1) / np.where(ok, r2, 1)), 1.0)
    first.inputs[1] = g.add_constant(f"{first.name}_weight_eq", (w1 / s.reshape((-1,) + (1,) * (w1.ndim - 1))).astype(np.float32)).name
    first.inputs[2] = g.add_constant(f"{first.name}_bias_eq", (b1 / s).astype(np.float32)).name
    second.inputs[1] = g.add_constant(f"{second.name}_weight_eq", (w2 * s.reshape(bshape2)).astype(np.float32)).name
    g.prune()
