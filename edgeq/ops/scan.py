"""A loop over time: one recurrent layer (LSTM, GRU) as a body graph run once per step.

``attrs['body']`` is a Graph whose inputs are one step of each sequence input followed by the
states, and whose outputs are the new states (same order). The scan node's inputs are the
sequence inputs (batch, steps, ...) and the initial states; its outputs are the final states,
then the per-step values of the states listed in ``attrs['stacked']`` (batch, steps, ...).

Every step runs the same body with the same quantization: a carried state has one scale for
its initial value, its value inside the body and its new value (``edgeq.quantize`` ties them),
so the weights and parameters are stored once however long the sequence (one initializer, one
buffer, one C array) and the C code loops.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..ir import Graph, Node
from .base import Attr, OpDef, get_op, register, set_constant

OnTensor = Callable[[str, np.ndarray], None] | None


def run_body(body: Graph, inputs: list[np.ndarray], on_tensor: OnTensor = None) -> list[np.ndarray]:
    """One execution of a body graph (its own constants, the graph's float or integer kernels)."""
    values = dict(zip(body.inputs, inputs))
    for node in body.nodes:
        op = get_op(node.op)
        args = [values[n] if n in values else body.t(n).data for n in node.inputs]
        for name, value in zip(node.outputs, op.run(node, body, args, on_tensor)):
            values[name] = value
            if on_tensor:
                on_tensor(name, value)
    return [values[o] for o in body.outputs]


@register
class Scan(OpDef):
    name = "scan"
    attributes = (Attr("body", "graph"), Attr("steps", "int"), Attr("sequences", "int"),
                  Attr("stacked", "any", ()), Attr("reverse", "bool", False))

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        body, steps = node.attrs["body"], node.attrs["steps"]
        states = [body.t(o).shape for o in body.outputs]
        stacked = [(s[0], steps, *s[1:]) for s in (states[i] for i in node.attrs["stacked"])]
        return [*states, *stacked]

    def tied_tensors(self, node: Node, graph: Graph) -> list[list[str]]:
        body, k = node.attrs["body"], node.attrs["sequences"]
        ties = [[node.inputs[j], body.inputs[j]] for j in range(k)]
        stacked = {i: node.outputs[len(body.outputs) + j] for j, i in enumerate(node.attrs["stacked"])}
        for i, new in enumerate(body.outputs):
            group = [node.inputs[k + i], body.inputs[k + i], new, node.outputs[i]]
            ties.append(group + ([stacked[i]] if i in stacked else []))
        return ties

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        """Constant initial states (zeros) take their state's quantization."""
        for name in node.inputs[node.attrs["sequences"]:]:
            t = graph.t(name)
            if t.is_constant and t.quant is None:
                ref = graph.t(node.outputs[node.inputs.index(name) - node.attrs["sequences"]])
                set_constant(t, *ref.quant.scalar(), ref.dtype)

    def run(self, node: Node, graph: Graph, xs: list[np.ndarray], on_tensor: OnTensor = None) -> list[np.ndarray]:
        body, k = node.attrs["body"], node.attrs["sequences"]
        sequences, states = xs[:k], list(xs[k:])
        n = max(x.shape[0] for x in xs)
        states = [np.broadcast_to(s, (n, *s.shape[1:])) for s in states]   # constant initial states: batch 1
        per_step: list[list[np.ndarray]] = []
        order = range(node.attrs["steps"])
        for t in (reversed(order) if node.attrs["reverse"] else order):
            states = run_body(body, [x[:, t] for x in sequences] + states, on_tensor)
            per_step.append([states[i] for i in node.attrs["stacked"]])
        if node.attrs["reverse"]:
            per_step.reverse()
        stacked = [np.stack([p[j] for p in per_step], axis=1) for j in range(len(node.attrs["stacked"]))]
        return [*states, *stacked]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return self.run(node, graph, xs)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return self.run(node, graph, xs)

    def macs(self, node: Node, graph: Graph) -> int:
        body = node.attrs["body"]
        return node.attrs["steps"] * sum(get_op(n.op).macs(n, body) for n in body.nodes)
