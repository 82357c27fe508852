"""Standalone clamp (ReLU, ReLU6, hardtanh) where it could not be fused into its producer.

Integer form follows TFLite's int8 RELU kernel: requantize (x - zp_in) by s_in / s_out, add
zp_out, clamp to the quantized bounds."""
from __future__ import annotations

import numpy as np

from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..ir import Graph, Node
from .base import Attr, OpDef, act_quant, activation_range, apply_float_activation, register


@register
class Clamp(OpDef):
    name = "clamp"
    attributes = (Attr("activation", "activation"),)
    pointwise = True
    in_place = "elementwise"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [apply_float_activation(node, xs[0])]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s_in, zp_in = act_quant(graph, node.inputs[0])
        s_out, zp_out = act_quant(graph, node.outputs[0])
        a = node.attrs
        a["multiplier"], a["shift"] = quantize_multiplier(float(s_in) / float(s_out))
        a["input_zero_point"], a["output_zero_point"] = zp_in, zp_out
        a["act_min"], a["act_max"] = activation_range(node, graph, node.outputs[0])

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        y = multiply_by_quantized_multiplier(xs[0].astype(np.int64) - a["input_zero_point"],
                                             a["multiplier"], a["shift"]) + a["output_zero_point"]
        return [np.clip(y, a["act_min"], a["act_max"]).astype(np.int8)]
