"""Lowering of a ``scan`` (one recurrent layer): a C for-loop over the steps around the step
body's own kernel calls.

The body's intermediates live in the scan's workspace (``memory_plan.workspace_bytes``: the
body's arena, then its outputs); step t of a sequence is read in place at ``t * row`` bytes into
the sequence buffer; the states live in the scan's final-state buffers (initialised from the
initial states before the loop) and each step's new states are copied there, and into row t
of the stacked outputs. The body's weights are ordinary constant arrays: stored once, however
many steps the loop runs. A 16x8 state (``passes.precision``) is copied like an int8 one, at
its own element size; the body's 16x8 layers call their own kernels."""
from __future__ import annotations

import numpy as np

from ....memory_plan import MemoryPlan, body_plan, workspace_name
from ..layer import LayerCode, ModelCode
from .movement import COPY
from .registry import LOWERINGS, kernel_scratch, lowers


class BodyCode(ModelCode):
    """A step body's generation state: its own plan, pointers mapped into the enclosing model's
    buffers, everything else (identifiers, weights, kernels) shared with the model."""

    def __init__(self, parent: ModelCode, body, plan: MemoryPlan, pointers: dict[str, str],  # noqa: ANN001
                 workspace: str) -> None:
        super().__init__(body, parent.name, plan, parent.trace)
        self.parent = parent
        self.ids, self.weight_symbol, self.kernels = parent.ids, parent.weight_symbol, parent.kernels
        self.pointers, self.workspace = pointers, workspace
        self.output_base = _align(plan.arena_size)

    def ptr(self, tensor: str) -> str:
        if tensor in self.pointers:
            return self.pointers[tensor]
        t = self.plan.tensors[tensor]
        if t.region == "arena":
            return f"{self.workspace} + {t.offset}"
        if t.region == "output":
            return f"{self.workspace} + {self.output_base + t.offset}"
        raise AssertionError(f"body input {tensor} has no pointer")


def _align(n: int) -> int:
    return (n + 3) // 4 * 4


def _row_bytes(graph, name: str) -> int:  # noqa: ANN001
    t = graph.t(name)
    return int(np.prod(t.shape[2:], dtype=np.int64)) * np.dtype(t.dtype).itemsize


@lowers("scan", kernels=(COPY,), int16=(COPY,))   # an int16 state: copies of twice the bytes
def _scan(layer: LayerCode) -> None:
    node, model = layer.node, layer.model
    body, k, steps = layer.attrs["body"], layer.attrs["sequences"], int(layer.attrs["steps"])
    n_states = len(body.outputs)
    stacked = list(layer.attrs["stacked"])
    plan = body_plan(body, kernel_scratch)
    pointers = {x_t: f"{model.ptr(seq)} + t * {_row_bytes(model.graph, seq)}"
                for x_t, seq in zip(body.inputs[:k], node.inputs[:k])}
    states = [model.ptr(o) for o in node.outputs[:n_states]]
    pointers.update(dict(zip(body.inputs[k:], states)))
    code = BodyCode(model, body, plan, pointers, model.ptr(workspace_name(node.name)))
    layer.note(f"{steps} steps of a {len(body.nodes)}-layer body")

    state_bytes = [body.t(o).size * np.dtype(body.t(o).dtype).itemsize for o in body.outputs]
    for init, dst, nbytes in zip(node.inputs[k:], states, state_bytes):
        t = model.graph.t(init)
        src = layer.operand(node.inputs.index(init)) if t.is_constant else layer.ptr(init)   # bytes
        if t.is_constant and t.dtype == "int16":
            src = f"(const int8_t *)(const void *){src}"     # an int16 array, copied as bytes
        layer.call(COPY, args=[src, dst, str(nbytes)])
    layer.calls.append(f"for (int32_t t = 0; t < {steps}; ++t) {{")
    for i, n in enumerate(body.nodes):
        entry = LOWERINGS[n.op]
        inner = LayerCode(code, i, n, entry.all_kernels)
        entry.build(inner)
        title, *rest = inner.comment.split("\n")
        layer.calls.append(f"    /* step: {title}" + "".join(f"; {r}" for r in rest) + " */")
        layer.calls += [f"    {c}" for c in inner.calls]
        layer.params += inner.params
        layer.arrays += inner.arrays
    model.weight_bytes += code.weight_bytes
    model.aligned_arrays |= code.aligned_arrays      # the body's arrays are written in NAME_weights.c
    for j, (new, dst, nbytes) in enumerate(zip(body.outputs, states, state_bytes)):
        if j in stacked:
            seq_out = node.outputs[n_states + stacked.index(j)]
            layer.calls.append(f"    {COPY.function}({code.ptr(new)}, {model.ptr(seq_out)} + t * {nbytes}, {nbytes});")
        layer.calls.append(f"    {COPY.function}({code.ptr(new)}, {dst}, {nbytes});")
    layer.calls.append("}")
