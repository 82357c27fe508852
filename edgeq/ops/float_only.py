"""Ops that exist only in the float graph: passes fold or lower them before quantization.
(``mean``, once float-only, has its integer kernel in ``reduce.py``.)"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import Attr, OpDef, register


@register
class BatchNorm(OpDef):
    """Inference batch norm over axis 1; ``fold_batch_norm`` merges it into conv/linear."""
    name = "batch_norm"
    attributes = (Attr("eps", "float"),)
    pointwise = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, gamma, beta, mean, var = xs
        shape = [1] * x.ndim
        shape[1] = -1
        inv = gamma / np.sqrt(var + node.attrs["eps"])
        return [((x - mean.reshape(shape)) * inv.reshape(shape) + beta.reshape(shape)).astype(np.float32)]


@register
class Identity(OpDef):
    """clone / dropout / alias: removed by ``remove_identities``."""
    name = "identity"
    lossless = True
    same_quant_as_input = True
    pointwise = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0]]
