"""Recognise activations that torch.export decomposes: chains of clamps merge into one clamp,
and ``x * clamp(x + 3, 0, 6) / 6`` becomes ``hardswish`` (TFLite's HARD_SWISH).
``hardsigmoid`` (``clamp(x + 3, 0, 6) / 6``) stays an add with a fused ReLU6 and a multiply
by 1/6, which is how TFLite runs it too."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node


def recognize_activations(graph: Graph) -> Graph:
    g = graph.copy()
    _merge_clamps(g)
    for node in list(g.nodes):
        if node in g.nodes:
            _hardswish(g, node)
    g.prune()
    return g


def _only_use(g: Graph, name: str) -> Node | None:
    users = g.consumers(name)
    if len(users) != 1 or g.is_graph_output(name):
        return None
    return users[0]


def _merge_clamps(g: Graph) -> None:
    for node in list(g.nodes):
        if node.op != "clamp" or node not in g.nodes:
            continue
        prod = g.producer(node.inputs[0])
        if prod is None or prod.op != "clamp" or _only_use(g, prod.outputs[0]) is not node:
            continue
        a, b = prod.attrs["activation"], node.attrs["activation"]
        los = [v for v in (a["min"], b["min"]) if v is not None]
        his = [v for v in (a["max"], b["max"]) if v is not None]
        prod.attrs["activation"] = {"min": max(los) if los else None, "max": min(his) if his else None}
        g.remove_node(node)
        g.replace_uses(node.outputs[0], prod.outputs[0])


def _const_value(g: Graph, name: str) -> float | None:
    t = g.t(name)
    if not t.is_constant or t.data.size != 1:
        return None
    return float(t.data.reshape(-1)[0])


def _other(node: Node, name: str) -> str | None:
    if node.inputs.count(name) != 1:
        return None
    return node.inputs[1] if node.inputs[0] == name else node.inputs[0]


def _hardswish(g: Graph, div: Node) -> None:
    if div.op != "mul":
        return
    cs = [i for i in div.inputs if _const_value(g, i) is not None]
    if len(cs) != 1 or not np.isclose(_const_value(g, cs[0]), 1.0 / 6.0, rtol=1e-6):
        return
    mul = g.producer(_other(div, cs[0]) or "")
    if mul is None or mul.op != "mul" or _only_use(g, mul.outputs[0]) is not div:
        return
    for r in mul.inputs:
        clamp = g.producer(r)
        if clamp is None or clamp.op != "clamp" or _only_use(g, r) is not mul \
                or clamp.attrs["activation"] != {"min": 0.0, "max": 6.0}:
            continue
        add = g.producer(clamp.inputs[0])
        if add is None or add.op != "add" or _only_use(g, add.outputs[0]) is not clamp:
            continue
        x = _other(mul, r)
        three = _other(add, x) if x is not None else None
        if three is None or _const_value(g, three) != 3.0:
            continue
        idx = g.nodes.index(div)
        g.nodes[idx] = Node("hardswish", [x], list(div.outputs), {}, div.name, div.module_path)
        for n in (mul, clamp, add):
            g.remove_node(n)
        return
