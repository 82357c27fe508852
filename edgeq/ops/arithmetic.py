"""Elementwise arithmetic beyond add/sub/mul: square root, reciprocal square root, absolute
value, squared difference, division of two tensors, and the cast of an integer activation (an
attention mask) to a real-valued one."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import OpDef, register


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


@register
class Sqrt(_Unary):
    """sqrt(x) (x >= 0; negative inputs give 0, as a quantized kernel that clamps would)."""
    name = "sqrt"

    def _f(self, x):
        return np.sqrt(np.maximum(x, 0.0))


@register
class Rsqrt(_Unary):
    """1 / sqrt(x) for x > 0."""
    name = "rsqrt"

    def _f(self, x):
        return 1.0 / np.sqrt(np.maximum(x, np.finfo(np.float32).tiny))


@register
class Abs(_Unary):
    name = "abs"

    def _f(self, x):
        return np.abs(x)


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


@register
class SquaredDifference(_Binary):
    """(a - b)^2: LayerNorm's variance term."""
    name = "squared_difference"

    def _f(self, a, b):
        return (a - b) ** 2


@register
class Div(_Binary):
    """a / b of two tensors (a mean over a mask: sum(x * m) / sum(m))."""
    name = "div"

    def _f(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b != 0, a / np.where(b != 0, b, 1.0), 0.0)


@register
class Cast(OpDef):
    """An integer activation (e.g. an int64 attention mask of 0s and 1s) as real values."""
    name = "cast"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].astype(np.float32)]
