"""Softmax over one axis. Output quantization is fixed at scale 1/256, zero point -128 (TFLite).

The integer kernel is TFLite's reference int8 softmax (gemmlowp fixed-point exp and
reciprocal); see ``edgeq.intmath_softmax``."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import OpDef, act_quant, register


@register
class Softmax(OpDef):
    name = "softmax"
    fixed_output_quant = (1.0 / 256.0, -128)

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = xs[0].astype(np.float64)
        e = np.exp(x - x.max(axis=node.attrs["axis"], keepdims=True))
        return [(e / e.sum(axis=node.attrs["axis"], keepdims=True)).astype(np.float32)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        from .. import intmath_softmax
        s_in, _ = act_quant(graph, node.inputs[0])
        node.attrs.update(intmath_softmax.softmax_params(s_in, node.attrs.get("beta", 1.0)))

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        from .. import intmath_softmax
        x = np.moveaxis(xs[0], node.attrs["axis"], -1)
        y = intmath_softmax.softmax_int8(x, node.attrs["input_multiplier"], node.attrs["input_left_shift"],
                                         node.attrs["diff_min"])
        return [np.ascontiguousarray(np.moveaxis(y, -1, node.attrs["axis"]))]
