"""Softmax and log-softmax over one axis. Softmax output quantization is fixed at scale 1/256,
zero point -128; log-softmax at 16/256, 127 (TFLite).

The integer kernels are TFLite's reference int8 softmax and log-softmax (gemmlowp fixed-point
exp, reciprocal and log); see ``edgeq.intmath_softmax``."""
from __future__ import annotations

import numpy as np

from .. import intmath_softmax
from ..ir import Graph, Node
from .base import Attr, OpDef, act_quant, register


#: logits this far below the largest one are zeros in every softmax output edgeq writes
SOFTMAX_SPAN = 20.0


@register
class Softmax(OpDef):
    name = "softmax"
    attributes = (Attr("axis", "axis"), Attr("beta", "float", 1.0))
    in_place = "elementwise"
    fixed_output_quant = (1.0 / 256.0, -128)

    def input_floor(self, node: Node, index: int, x: np.ndarray) -> float | None:
        # exp(-SOFTMAX_SPAN) of a row's largest logit is below half an int16 step even summed
        # over a thousand masked positions; lower logits (an additive mask) change nothing. Each
        # row counts: a confident classifier's rows have maxima far below the tensor's largest
        # value, and a floor under that largest value would clip their winning logits.
        lowest_row_max = float(np.max(x, axis=node.attrs["axis"]).min())
        return lowest_row_max - SOFTMAX_SPAN / float(node.attrs.get("beta", 1.0))

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = xs[0].astype(np.float64)
        e = np.exp(x - x.max(axis=node.attrs["axis"], keepdims=True))
        return [(e / e.sum(axis=node.attrs["axis"], keepdims=True)).astype(np.float32)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s_in, _ = act_quant(graph, node.inputs[0])
        node.attrs.update(intmath_softmax.softmax_params(s_in, node.attrs.get("beta", 1.0)))

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = np.moveaxis(xs[0], node.attrs["axis"], -1)
        y = intmath_softmax.softmax_int8(x, node.attrs["input_multiplier"], node.attrs["input_left_shift"],
                                         node.attrs["diff_min"])
        return [np.ascontiguousarray(np.moveaxis(y, -1, node.attrs["axis"]))]


@register
class LogSoftmax(OpDef):
    """log(softmax(x)) over attrs['axis']. Output quantization fixed at scale 16/256, zero point
    127 (TFLite's int8 LOG_SOFTMAX: [-255/16, 0] in 1/16 steps; lower values saturate at -128).
    The integer kernel is TFLite's reference int8 log-softmax (``intmath_softmax``)."""
    name = "log_softmax"
    attributes = (Attr("axis", "axis"),)
    in_place = "elementwise"
    fixed_output_quant = (16.0 / 256.0, 127)

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = xs[0].astype(np.float64)
        z = x - x.max(axis=node.attrs["axis"], keepdims=True)
        return [(z - np.log(np.exp(z).sum(axis=node.attrs["axis"], keepdims=True))).astype(np.float32)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs.update(intmath_softmax.log_softmax_params(act_quant(graph, node.inputs[0])[0]))

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        x = np.moveaxis(xs[0], a["axis"], -1)
        y = intmath_softmax.log_softmax_int8(x, a["input_multiplier"], a["input_left_shift"], a["diff_min"],
                                             a["reverse_scaling_divisor"], a["reverse_scaling_left_shift"])
        return [np.ascontiguousarray(np.moveaxis(y, -1, a["axis"]))]
