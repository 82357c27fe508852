"""Change of integer type between an int8 and an int16 region of a mixed-precision graph.

Inserted only by ``edgeq.passes.precision``; in the float graph it is the identity. Integer
form is TFLite's QUANTIZE from an integer tensor (``reference_ops::Requantize``):
``MultiplyByQuantizedMultiplier(x - zp_in, M(s_in / s_out)) + zp_out``, saturated to the
output type, with M derived in double from the float32 scales.
"""
from __future__ import annotations

import numpy as np

from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..ir import Graph, Node
from .base import OpDef, act_quant, register


def rescale_params(graph: Graph, src: str, dst: str) -> dict:
    """(multiplier, shift, zero points) that bring activation ``src`` to ``dst``'s quantization."""
    s_in, zp_in = act_quant(graph, src)
    s_out, zp_out = act_quant(graph, dst)
    m, sh = quantize_multiplier(float(s_in) / float(s_out))
    return {"multiplier": m, "shift": sh, "input_zero_point": zp_in, "output_zero_point": zp_out}


def requantize_int(x: np.ndarray, multiplier: int, shift: int, input_zero_point: int,
                   output_zero_point: int, out_dtype: str) -> np.ndarray:
    y = multiply_by_quantized_multiplier(x.astype(np.int64) - input_zero_point, multiplier, shift)
    info = np.iinfo(out_dtype)
    return np.clip(y + output_zero_point, info.min, info.max).astype(out_dtype)


@register
class Requantize(OpDef):
    name = "requantize"
    supports_int16 = True
    internal = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0]]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs.update(rescale_params(graph, node.inputs[0], node.outputs[0]))

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        return [requantize_int(xs[0], a["multiplier"], a["shift"], a["input_zero_point"],
                               a["output_zero_point"], graph.t(node.outputs[0]).dtype)]
