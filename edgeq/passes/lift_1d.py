"""Run 1-D (N, C, L) sections of a graph as 2-D (N, C, 1, L): conv1d and pooling arrive as
unsqueeze -> 2-D op -> squeeze; this pass moves each squeeze (a reshape (N, C, 1, L) ->
(N, C, L)) down past per-channel ops (batch norm, activations, a spatial mean) until it meets
the next unsqueeze, and cancels the pair. Batch norm then folds into the convolution, and the
whole 1-D stack is 2-D convolutions and pools on NHWC tensors of height 1."""
from __future__ import annotations

from ..ir import Graph, Node, Tensor
from ..ops import get_op


def lift_1d(graph: Graph) -> Graph:
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        for node in list(g.nodes):
            if node in g.nodes and node.op == "reshape" and _is_squeeze(g, node) and _push(g, node):
                changed = True
    g.prune()
    return g


def _is_squeeze(g: Graph, node: Node) -> bool:
    src, dst = g.t(node.inputs[0]).shape, g.t(node.outputs[0]).shape
    return len(src) == 4 and src[2] == 1 and dst == (src[0], src[1], src[3])


def _push(g: Graph, sq: Node) -> bool:
    y = sq.outputs[0]
    users = g.consumers(y)
    if len(users) != 1 or g.is_graph_output(y):
        return False
    u = users[0]
    x4 = sq.inputs[0]
    shape4 = g.t(x4).shape
    if u.op == "reshape" and g.t(u.outputs[0]).shape == shape4:          # unsqueeze: cancel
        g.remove_node(u)
        g.remove_node(sq)
        g.replace_uses(u.outputs[0], x4)
        return True
    if get_op(u.op).pointwise and u.inputs[0] == y and all(g.t(i).is_constant for i in u.inputs[1:]):
        out = u.outputs[0]
        new4 = g.add_tensor(Tensor(g.unique_name(f"{out}_2d"), shape4, g.t(out).dtype))
        u.inputs[0], u.outputs = x4, [new4.name]
        sq.inputs, sq.outputs = [new4.name], [out]
        g.nodes.remove(sq)
        g.nodes.insert(g.nodes.index(u) + 1, sq)
        return True
    if u.op == "mean" and u.inputs[0] == y and sorted(u.attrs["axes"]) == [2]:
        u.inputs[0] = x4
        u.attrs = {"axes": [2, 3], "keepdim": u.attrs["keepdim"]}
        if u.attrs["keepdim"]:                        # (N, C, 1, 1) -> (N, C, 1)
            out = u.outputs[0]
            mid = g.add_tensor(Tensor(g.unique_name(f"{out}_2d"), (shape4[0], shape4[1], 1, 1), g.t(out).dtype))
            u.outputs = [mid.name]
            g.nodes.insert(g.nodes.index(u) + 1, Node("reshape", [mid.name], [out], {"shape": [shape4[1], 1]},
                                                       f"{u.name}_to_1d", u.module_path))
        g.remove_node(sq)
        return True
    return False
