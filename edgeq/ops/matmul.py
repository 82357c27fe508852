"""Matrix product of two activations over their last two dimensions, leading dimensions
broadcast (attention's Q K^T and A V)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import OpDef, register


@register
class BatchMatmul(OpDef):
    name = "batch_matmul"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a, b = (graph.t(n).shape for n in node.inputs)
        lead = np.broadcast_shapes(a[:-2], b[:-2])
        return [(*lead, a[-2], b[-1])]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.matmul(xs[0].astype(np.float32), xs[1].astype(np.float32)).astype(np.float32)]

    def macs(self, node: Node, graph: Graph) -> int:
        a = graph.t(node.inputs[0]).shape
        return int(np.prod(self.shape(node, graph)[0])) * int(a[-1])
