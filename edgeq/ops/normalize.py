"""L2 normalization along one axis: x / max(||x||_2, eps) (torch's F.normalize).

Integer kernel: TFLite's int8 L2_NORMALIZATION (``reference/integer_ops/l2normalization.h``,
the same code in TFLite Micro and LiteRT): the int32 sum of squares of ``x - zp`` per row, its
inverse square root by ``GetInvSqrtQuantizedMultiplierExp``, each element requantized to the
fixed output quantization 1/128, zero point 0 (TFLite requires it; 1.0 saturates to 127/128).
The epsilon is not represented: an all-zero row gives zeros, as in float."""
from __future__ import annotations

import numpy as np

from ..intmath_elementwise import l2_normalize_int8
from ..ir import Graph, Node
from .base import Attr, OpDef, act_quant, register

L2_OUTPUT_QUANT = (1.0 / 128.0, 0)


@register
class L2Normalize(OpDef):
    name = "l2_normalize"
    attributes = (Attr("axis", "axis"),)
    fixed_output_quant = L2_OUTPUT_QUANT

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = xs[0].astype(np.float64)
        norm = np.sqrt((x * x).sum(axis=node.attrs["axis"], keepdims=True))
        return [(x / np.maximum(norm, 1e-12)).astype(np.float32)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs["input_zero_point"] = act_quant(graph, node.inputs[0])[1]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        axis = node.attrs["axis"]
        y = l2_normalize_int8(np.moveaxis(xs[0], axis, -1), node.attrs["input_zero_point"])
        return [np.ascontiguousarray(np.moveaxis(y, -1, axis))]
