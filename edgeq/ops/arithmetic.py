"""Elementwise arithmetic beyond add/sub/mul: square root, reciprocal square root, absolute
value, squared difference, division of two tensors, and the cast of an integer activation (an
attention mask) to a real-valued one.

Integer kernels (TFLite's int8 reference kernels unless said; see ``edgeq.intmath_elementwise``):

* ``abs``: TFLite's ABS, ``|x - zp|`` requantized by ``M(s_in / s_out)`` (the ratio a float32
  division in both runtimes), or only re-offset when the scales are equal; int16 too.
* ``rsqrt``: TFLite's int8 RSQRT evaluated on every int8 input into a 256-entry table.
  Inputs below the zero point (negative reals) give the largest output, as zero does.
* ``sqrt``: no integer SQRT is exact in both runtimes (TFLite Micro's SQRT is float only;
  LiteRT's int8 SQRT dequantizes, takes std::sqrt and truncates), so the op is a 256-entry
  table of sqrt(max(x, 0)) built as LiteRT's float LUTs are (``float_lut_int8``): every target
  looks it up (TFLite: CAST, ADD, GATHER, exact in both runtimes).
* ``squared_difference``: TFLite's int8 SQUARED_DIFFERENCE (left shift 7).
* ``div``: TFLite's int8 DIV (``DivElementwise``); a denominator equal to its zero point counts
  as one step above it; right shifts past 31 bits (undefined in C, see ``div_shift_range``)
  round as the mathematics says.
* ``cast``: an int32 activation saturated to int8 at scale 1.0, zero point 0 (exact for
  |v| <= 127: masks, small counts).
"""
from __future__ import annotations

import numpy as np

from .. import intmath_elementwise as ie
from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..intmath_activations import float_lut_int8
from ..ir import Graph, Node
from ..quant import dtype_range
from .base import OpDef, act_quant, quantize_constant_operand, register


class _Unary(OpDef):
    pointwise = True
    in_place = "elementwise"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def _f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return [self._f(xs[0].astype(np.float64)).astype(np.float32)]


class _UnaryTable(_Unary):
    """An int8 -> int8 op computed as a 256-entry table (``attrs['table']``, by input + 128)."""
    table = True

    def _table(self, node: Node, graph: Graph) -> np.ndarray:
        raise NotImplementedError

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs["table"] = self._table(node, graph)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [node.attrs["table"][xs[0].astype(np.int64) + 128]]


@register
class Sqrt(_UnaryTable):
    """sqrt(x) (x >= 0; negative inputs give 0, as a quantized kernel that clamps would)."""
    name = "sqrt"

    def _f(self, x):
        return np.sqrt(np.maximum(x, 0.0))

    def _table(self, node: Node, graph: Graph) -> np.ndarray:
        return float_lut_int8(self._f, *act_quant(graph, node.inputs[0]), *act_quant(graph, node.outputs[0]))


@register
class Rsqrt(_UnaryTable):
    """1 / sqrt(x) for x > 0. attrs after quantize: multiplier, shift, input/output zero points
    (TFLite's RSQRT parameters) and the table they give."""
    name = "rsqrt"

    def _f(self, x):
        return 1.0 / np.sqrt(np.maximum(x, np.finfo(np.float32).tiny))

    def _table(self, node: Node, graph: Graph) -> np.ndarray:
        (s_in, zp_in), (s_out, zp_out) = act_quant(graph, node.inputs[0]), act_quant(graph, node.outputs[0])
        a = node.attrs
        a["multiplier"], a["shift"] = ie.rsqrt_multiplier(s_in, s_out)
        a["input_zero_point"], a["output_zero_point"] = zp_in, zp_out
        return ie.rsqrt_int8(ie.INT8_VALUES, zp_in, a["multiplier"], a["shift"], zp_out)


@register
class Abs(_Unary):
    name = "abs"
    supports_int16 = True

    def _f(self, x):
        return np.abs(x)

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        (s_in, zp_in), (s_out, zp_out) = act_quant(graph, node.inputs[0]), act_quant(graph, node.outputs[0])
        a = node.attrs
        a["needs_rescale"] = bool(np.float32(s_in) != np.float32(s_out))
        a["multiplier"], a["shift"] = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        a["input_zero_point"], a["output_zero_point"] = zp_in, zp_out

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        v = np.abs(xs[0].astype(np.int64) - a["input_zero_point"])
        if a["needs_rescale"]:
            v = multiply_by_quantized_multiplier(v, a["multiplier"], a["shift"])
        dtype = graph.t(node.outputs[0]).dtype
        return [np.clip(v + a["output_zero_point"], *dtype_range(dtype)).astype(dtype)]


class _Binary(OpDef):
    broadcasting = True
    in_place = "elementwise"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a, b = (graph.t(n).shape for n in node.inputs)
        return [tuple(np.broadcast_shapes(a, b))]

    def _f(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [self._f(xs[0].astype(np.float64), xs[1].astype(np.float64)).astype(np.float32)]

    def _zero_points(self, node: Node, graph: Graph) -> tuple[int, int, int]:
        return tuple(act_quant(graph, n)[1] for n in (*node.inputs, node.outputs[0]))


@register
class SquaredDifference(_Binary):
    """(a - b)^2: LayerNorm's variance term."""
    name = "squared_difference"
    LEFT_SHIFT = 7

    def _f(self, a, b):
        return (a - b) ** 2

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        """The output scale, raised if needed until LiteRT's output multiplier is below one
        (it aborts otherwise): only degenerate, near-constant outputs get here."""
        for n in node.inputs:
            quantize_constant_operand(graph, n)
        s1, s2 = (act_quant(graph, n)[0] for n in node.inputs)
        s = np.float32(scale)
        while True:
            try:
                ie.squared_difference_params(s1, s2, float(s), self.LEFT_SHIFT)
                return float(s), zero_point
            except ValueError:
                s = np.float32(s * np.float32(1.25))

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s1, s2, s_out = (act_quant(graph, n)[0] for n in (*node.inputs, node.outputs[0]))
        node.attrs.update(ie.squared_difference_params(s1, s2, s_out, self.LEFT_SHIFT))
        a = node.attrs
        a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"] = self._zero_points(node, graph)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        y = ie.squared_difference_int(a, xs[0], xs[1], a["input1_zero_point"], a["input2_zero_point"],
                                      a["output_zero_point"], -128, 127)
        return [y.astype(np.int8)]


@register
class Div(_Binary):
    """a / b of two tensors (a mean over a mask: sum(x * m) / sum(m)). attrs after quantize:
    multiplier, shift, zero points and ``max_right_shift`` (over all int8 operands; TFLite's
    DIV is defined only up to 31)."""
    name = "div"

    def _f(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        for n in node.inputs:
            quantize_constant_operand(graph, n)
        s1, s2, s_out = (act_quant(graph, n)[0] for n in (*node.inputs, node.outputs[0]))
        a = node.attrs
        a["multiplier"], a["shift"] = ie.div_multiplier(s1, s2, s_out)
        a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"] = self._zero_points(node, graph)
        a["min_right_shift"], a["max_right_shift"] = ie.div_shift_range(
            a["shift"], a["input1_zero_point"], a["input2_zero_point"])
        if a["min_right_shift"] < 0:
            raise ValueError(f"div at {node.where()}: s1 / (s2 * s_out) >= 2^23, the output scale is too fine")

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        y = ie.div_int8(xs[0], xs[1], a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"],
                        a["multiplier"], a["shift"], -128, 127)
        return [y.astype(np.int8)]


@register
class Cast(OpDef):
    """An integer activation (e.g. an int64 attention mask of 0s and 1s) as real values:
    int8 at scale 1, zero point 0, saturating."""
    name = "cast"
    fixed_output_quant = (1.0, 0)
    pointwise = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].astype(np.float32)]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.clip(xs[0].astype(np.int64), -128, 127).astype(np.int8)]
