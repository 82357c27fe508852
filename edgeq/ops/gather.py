"""Gathers: rows of a constant table at integer ids (``embedding``), and elements of an
activation at constant indices along one axis (``gather``: reflect padding, reordering)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import Attr, OpDef, register


@register
class Gather(OpDef):
    """attrs['axis']; input 1: constant int64 indices (1-D, non-negative)."""
    name = "gather"
    lossless = True
    attributes = (Attr("axis", "axis"),)
    same_quant_as_input = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = list(graph.t(node.inputs[0]).shape)
        x[node.attrs["axis"]] = graph.t(node.inputs[1]).shape[0]
        return [tuple(x)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.take(xs[0], xs[1].astype(np.int64), axis=node.attrs["axis"])]

    run_int = run_float


@register
class Embedding(OpDef):
    """Input 0: the constant table [vocabulary, dim]; input 1: integer ids (an activation);
    output: ids.shape + (dim,). Ids outside the table are clamped to it (as TFLite's GATHER
    would refuse them at run time)."""
    name = "embedding"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        table, ids = (graph.t(n).shape for n in node.inputs)
        return [(*ids, table[1])]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        table, ids = xs
        return [table[np.clip(ids.astype(np.int64), 0, table.shape[0] - 1)].astype(np.float32)]
