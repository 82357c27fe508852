"""Learnable activation scales for the QAT module (LSQ, Esser et al. 2020), integer-exact.

Which scales learn: every int8 per-tensor activation scale the quantizer calibrated (graph
inputs and node outputs), as one float32 ``nn.Parameter`` each. Zero points stay as
calibrated. Fixed by the deployed formats and never learned: a fixed output quantization
(softmax's 1/256, the table ops' fixed scales), every int16 tensor (16x8), index outputs. The
output of a ``same_quant_as_input`` op (reshape, max pool, ...) carries its input's
quantization: it follows that tensor (tied), learned or fixed.

Forward: the QAT module writes the current parameter values, as float32, into the quantized
graph's tensors (through the op's ``adjust_output_quant``, as ``edgeq.quantize`` does) and runs
every op's own ``quantize()`` again, so multipliers, shifts and tables come from the learned
scales by edgeq's rules and a build of the module emits them.

Backward (``lsq``): the value is the integer result dequantized; d/ds is LSQ's
``q - v/s`` inside the range (q the deployed integer, zero point removed) and the clipped
bound outside it, times the gradient scale ``1 / sqrt(N * Qp)`` (N: the tensor's elements per
sample, Qp: the positive levels ``qmax - zero_point``); d/dv is 1 inside, 0 outside."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..ir import Graph, QuantParams
from ..ops import get_op
from ..quant import dtype_range

#: the smallest scale a learned one is kept at (a step past zero)
MIN_SCALE = float(np.float32(1e-8 / 255))


def learnable_tensors(graph: Graph) -> tuple[list[str], dict[str, str]]:
    """(tensors with a learnable scale, in graph order; tensor -> the tensor whose quantization
    it carries, for outputs of ``same_quant_as_input`` ops)."""
    learn: list[str] = []
    follows: dict[str, str] = {}

    def own(name: str) -> bool:
        t = graph.t(name)
        return t.quant is not None and t.dtype == "int8" and not t.quant.per_channel

    for name in graph.inputs:
        if own(name):
            learn.append(name)
    for node in graph.nodes:
        op = get_op(node.op)
        for out in node.outputs:
            src = graph.t(node.inputs[0]) if node.inputs else None
            if graph.t(out).quant is None or op.output_dtype is not None:
                continue
            if op.same_quant_as_input and src is not None and src.quant is not None and not src.is_constant:
                follows[out] = node.inputs[0]
            elif op.fixed_output_quant is None and own(out) and not op.bodies(node):
                learn.append(out)
    return learn, follows


def root(name: str, follows: dict[str, str]) -> str:
    while name in follows:
        name = follows[name]
    return name


def write_scales(graph: Graph, values: dict[str, float], follows: dict[str, str]) -> None:
    """Set the graph's activation quantization from learned scale ``values`` (float32), in
    graph order: each through its producer's ``adjust_output_quant``; followers copy."""
    def put(name: str, scale: float, zp: int) -> None:
        graph.t(name).quant = QuantParams(scale, zp)

    for name in graph.inputs:
        if name in values:
            put(name, values[name], int(graph.t(name).quant.zero_point[0]))
    for node in graph.nodes:
        op = get_op(node.op)
        for out in node.outputs:
            if out in follows:
                src = graph.t(follows[out]).quant
                put(out, float(src.scale[0]), int(src.zero_point[0]))
            elif out in values:
                put(out, *op.adjust_output_quant(node, graph, values[out], int(graph.t(out).quant.zero_point[0])))


def grad_scale(graph: Graph, name: str) -> float:
    """LSQ's gradient scale of tensor ``name``: 1 / sqrt(elements per sample * Qp)."""
    t = graph.t(name)
    n = max(1, int(np.prod(t.shape[1:])) if len(t.shape) > 1 else int(np.prod(t.shape)))
    zp = int(t.quant.zero_point[0])
    return 1.0 / math.sqrt(n * max(1, dtype_range(t.dtype)[1] - zp))


def lsq(v: torch.Tensor, s: torch.Tensor, stored: float, q: torch.Tensor, zp: int, lo: int, hi: int,
        g: float) -> torch.Tensor:
    """The dequantized integers ``q`` (scale ``stored``, the float32 in the graph) as a value,
    LSQ's gradients to the surrogate ``v`` and the scale parameter ``s`` (see the module docstring)."""
    s_eff = s + (torch.tensor(stored, dtype=torch.float32) - s).detach()   # the stored value, s's gradient
    s_g = s_eff * g + (s_eff - s_eff * g).detach()                          # gradient scaled by g
    u = (v / s_g).clamp(lo - zp, hi - zp)
    r = u + ((q - zp).to(u.dtype) - u).detach()         # the deployed integer, straight through
    surrogate = r * s_g
    value = ((q.to(torch.float64) - zp) * stored).to(torch.float32)
    return value.detach() + (surrogate - surrogate.detach())    # exactly the value; the surrogate's gradient
