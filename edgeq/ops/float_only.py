"""Ops that exist only in the float graph: passes fold or lower them before quantization."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from .base import OpDef, register


@register
class BatchNorm(OpDef):
    """Inference batch norm over axis 1; ``fold_batch_norm`` merges it into conv/linear."""
    name = "batch_norm"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, gamma, beta, mean, var = xs
        shape = [1] * x.ndim
        shape[1] = -1
        inv = gamma / np.sqrt(var + node.attrs["eps"])
        return [((x - mean.reshape(shape)) * inv.reshape(shape) + beta.reshape(shape)).astype(np.float32)]


@register
class Mean(OpDef):
    """Mean over ``axes``; global spatial means are lowered to avg_pool2d by a pass."""
    name = "mean"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        axes = {a % len(x) for a in node.attrs["axes"]}
        if node.attrs["keepdim"]:
            return [tuple(1 if i in axes else d for i, d in enumerate(x))]
        return [tuple(d for i, d in enumerate(x) if i not in axes)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].mean(axis=tuple(node.attrs["axes"]), keepdims=node.attrs["keepdim"]).astype(np.float32)]


@register
class Identity(OpDef):
    """clone / dropout / alias: removed by ``remove_identities``."""
    name = "identity"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0]]
