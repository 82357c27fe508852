"""L2 normalization along the last axis: x / max(||x||_2, eps) (torch's F.normalize)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import Attr, OpDef, register


@register
class L2Normalize(OpDef):
    name = "l2_normalize"
    attributes = (Attr("axis", "axis"),)

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = xs[0].astype(np.float64)
        norm = np.sqrt((x * x).sum(axis=node.attrs["axis"], keepdims=True))
        return [(x / np.maximum(norm, 1e-12)).astype(np.float32)]
