"""Elementwise add of two operands (numpy broadcasting; either may be a constant) with a fused
activation.

Integer algorithm of TFLite's int8 ADD: both inputs are shifted left by 20 bits, rescaled to a
common scale (2 * max input scale), summed, and requantized to the output scale. The
multipliers are derived in double from the float32 scales, as TFLite Micro and LiteRT both do.
int16 operands (16x8 mode, zero points 0) use the same algorithm with a left shift of 15, as
TFLite's general-scale int16 ADD does.
"""
from __future__ import annotations

import numpy as np

from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..ir import Graph, Node
from .base import ACTIVATION, OpDef, act_quant, activation_range, apply_float_activation, quantize_constant_operand, register

ADD_LEFT_SHIFT = 20
ADD_LEFT_SHIFT_INT16 = 15


def set_add_params(node: Node, graph: Graph) -> None:
    """ADD's integer parameters into node.attrs (shared by ``sub``)."""
    s1, zp1 = act_quant(graph, node.inputs[0])
    s2, zp2 = act_quant(graph, node.inputs[1])
    s_out, zp_out = act_quant(graph, node.outputs[0])
    left_shift = ADD_LEFT_SHIFT_INT16 if graph.t(node.outputs[0]).dtype == "int16" else ADD_LEFT_SHIFT
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    a = node.attrs
    a["input1_multiplier"], a["input1_shift"] = quantize_multiplier(float(s1) / twice_max)
    a["input2_multiplier"], a["input2_shift"] = quantize_multiplier(float(s2) / twice_max)
    a["output_multiplier"], a["output_shift"] = quantize_multiplier(
        twice_max / ((1 << left_shift) * float(s_out)))
    a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"] = zp1, zp2, zp_out
    a["left_shift"] = left_shift
    a["act_min"], a["act_max"] = activation_range(node, graph, node.outputs[0])


def add_int(a: dict, x1: np.ndarray, x2: np.ndarray, sign2: int = 1) -> np.ndarray:
    """TFLite's int8 (or int16) ADD (``sign2=-1``: the second operand negated, a subtraction)."""
    v1 = (x1.astype(np.int64) - a["input1_zero_point"]) << a["left_shift"]
    v2 = (x2.astype(np.int64) - a["input2_zero_point"]) * sign2 << a["left_shift"]
    s1 = multiply_by_quantized_multiplier(v1, a["input1_multiplier"], a["input1_shift"])
    s2 = multiply_by_quantized_multiplier(v2, a["input2_multiplier"], a["input2_shift"])
    out = multiply_by_quantized_multiplier(s1 + s2, a["output_multiplier"], a["output_shift"])
    return np.clip(out + a["output_zero_point"], a["act_min"], a["act_max"]).astype(x1.dtype)


def binary_affine(graph: Graph, node: Node, shift_sign: float = 1.0,
                  scale: bool = False) -> tuple[str, np.ndarray | None, np.ndarray | None] | None:
    """``as_affine`` of a binary op with one constant operand: x * c (``scale``) or x + sign * c;
    a constant on the left of a subtraction (c - x) is not of that form."""
    if node.attrs.get("activation"):
        return None
    ins = [graph.t(n) for n in node.inputs]
    if sum(t.is_constant for t in ins) != 1:
        return None
    k = 0 if ins[0].is_constant else 1
    if not scale and shift_sign < 0 and k == 0:
        return None
    c = ins[k].data.astype(np.float64)
    if scale:
        return node.inputs[1 - k], c, None
    return node.inputs[1 - k], None, c if shift_sign > 0 else -c


@register
class Add(OpDef):
    name = "add"
    attributes = (ACTIVATION,)
    supports_int16 = True
    fusable_activation = True
    broadcasting = True
    in_place = "elementwise"

    def as_affine(self, node: Node, graph: Graph) -> tuple[str, np.ndarray | None, np.ndarray | None] | None:
        return binary_affine(graph, node)

    def int16_capable(self, node: Node, graph: Graph) -> bool:
        """16x8 only for two activations of one shape (no broadcasting, no constant operand)."""
        a, b = (graph.t(n) for n in node.inputs)
        return not a.is_constant and not b.is_constant and a.shape == b.shape

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a, b = (graph.t(n).shape for n in node.inputs)
        return [tuple(np.broadcast_shapes(a, b))]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [apply_float_activation(node, (xs[0] + xs[1]).astype(np.float32))]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        for n in node.inputs:
            quantize_constant_operand(graph, n)
        set_add_params(node, graph)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [add_int(node.attrs, xs[0], xs[1])]
