"""Data-movement ops: reshape (row-major, batch dimension kept) and transpose."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import Attr, OpDef, register


@register
class Reshape(OpDef):
    """attrs['shape']: the target shape without the batch dimension."""
    name = "reshape"
    lossless = True
    aliases_input = True
    attributes = (Attr("shape", "shape"),)
    same_quant_as_input = True
    layout_only = True
    supports_int16 = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0])
        rest = list(node.attrs["shape"])
        if -1 in rest:
            known = int(np.prod([d for d in rest if d != -1]))
            rest[rest.index(-1)] = (x.size // x.shape[0]) // known
        return [(x.shape[0], *rest)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].reshape(xs[0].shape[0], *node.attrs["shape"])]

    run_int = run_float


@register
class Transpose(OpDef):
    """attrs['perm']: a permutation of all dimensions that keeps dimension 0 (batch) first."""
    name = "transpose"
    lossless = True
    attributes = (Attr("perm", "perm"),)
    same_quant_as_input = True
    layout_only = True
    supports_int16 = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        return [tuple(x[p] for p in node.attrs["perm"])]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.ascontiguousarray(xs[0].transpose(node.attrs["perm"]))]

    run_int = run_float
