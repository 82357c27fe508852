"""Gathers: rows of a constant table at integer ids (``embedding``), and elements of an
activation at constant indices along one axis (``gather``: reflect padding, reordering).

Both only move int8 values, so they keep a quantization: ``gather`` its input's, ``embedding``
its table's. The table is quantized per tensor, asymmetrically over its own min/max: the
output is an activation like any other (asymmetric int8), a lookup copies bytes so the output
must carry the table's parameters, and every table row can be looked up, so the whole table's
range is the honest one (calibration sees only the ids of its samples).

Ids outside the table are clamped to [0, vocabulary - 1] in the float and integer references
and in every artifact (TFLite Micro's GATHER would read out of bounds, LiteRT's fails)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..quant import constant_params
from .base import Attr, OpDef, register, set_constant


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


def clamped_ids(ids: np.ndarray, vocabulary: int) -> np.ndarray:
    return np.clip(ids.astype(np.int64), 0, vocabulary - 1)


@register
class Embedding(OpDef):
    """Input 0: the constant table [vocabulary, dim]; input 1: integer ids (an activation);
    output: ids.shape + (dim,)."""
    name = "embedding"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        table, ids = (graph.t(n).shape for n in node.inputs)
        return [(*ids, table[1])]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        table, ids = xs
        return [table[clamped_ids(ids, table.shape[0])].astype(np.float32)]

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        """The table's own per-tensor parameters (the output is its rows)."""
        t = graph.t(node.inputs[0])
        if t.quant is None:
            set_constant(t, *constant_params(t.data.astype(np.float64)))
        return t.quant.scalar()

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        table, ids = xs
        return [table[clamped_ids(ids, table.shape[0])]]
