"""Fully connected layer y = x @ W^T + b on 2-D activations, with a fused activation.

Weights are [out_features, in_features] int8, per output channel by default (per tensor when
the target asks: ``options['linear_per_channel'] = False``). With int16 activations (16x8) the
accumulator is int64 with an int64 bias and the int64 requantization, as in conv2d."""
from __future__ import annotations

import numpy as np
import torch

from ..intmath import (
    EXACT_FLOAT64,
    INT32_LIMIT,
    exact_float_type,
    max_abs_offset,
    requantize,
    requantize_int64,
)
from ..ir import Graph, Node
from .base import ACTIVATION, OpDef, apply_float_activation, register, torch_activation
from .conv2d import quantize_filter_and_bias
from .traversal import Traversal, row_traversal


def linear_int(x: np.ndarray, w: np.ndarray, bias: np.ndarray, input_zero_point: int,
               multiplier: np.ndarray, shift: np.ndarray, output_zero_point: int,
               act_min: int, act_max: int) -> np.ndarray:
    wide = x.dtype == np.int16
    rows = x.reshape(-1, x.shape[-1])      # 2-D: numpy's N-D matmul does not use BLAS
    exact = _exact_float(x, w, input_zero_point, wide)
    if exact is not None:
        acc = ((rows.astype(exact) - exact(input_zero_point)) @ w.astype(exact).T).astype(np.int64)
    else:
        acc_type = np.int64 if wide else np.int32
        acc = ((rows.astype(acc_type) - input_zero_point) @ w.astype(acc_type).T).astype(np.int64)
    acc = acc.reshape(*x.shape[:-1], w.shape[0])
    acc += bias.astype(np.int64)
    if multiplier.size == 1:
        multiplier, shift = multiplier[0], shift[0]
    if wide:
        return requantize_int64(acc, multiplier, shift, act_min, act_max).astype(np.int16)
    return requantize(acc, multiplier, shift, output_zero_point, act_min, act_max).astype(np.int8)


def _exact_float(x: np.ndarray, w: np.ndarray, zero_point: int, wide: bool) -> type | None:
    """The float type (float32 or float64) whose product is exact and equals the kernel's int32
    (int64: 16x8) sums, or None. Integer inputs only: anything else keeps the integer loop's own
    conversion."""
    if not np.issubdtype(x.dtype, np.integer):
        return None
    bound = x.shape[-1] * max_abs_offset(x.dtype, zero_point) * int(np.abs(w.astype(np.int64)).max(initial=0))
    return exact_float_type(bound, EXACT_FLOAT64 if wide else INT32_LIMIT)


@register
class Linear(OpDef):
    name = "linear"
    attributes = (ACTIVATION,)
    supports_int16 = True
    fusable_activation = True
    weighted = True
    filter_axis = 0
    equalizable = True

    def output_channel_axis(self, node: Node, graph: Graph) -> int:
        return len(graph.t(node.outputs[0]).shape) - 1

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        return [tuple(x[:-1]) + (graph.t(node.inputs[1]).shape[0],)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        rows = x.reshape(-1, x.shape[-1]).astype(np.float32)    # 2-D: BLAS (N-D matmul is a slow loop)
        y = (rows @ w.T.astype(np.float32) + b).astype(np.float32).reshape(*x.shape[:-1], w.shape[0])
        return [apply_float_activation(node, y)]

    def weighted_torch(self, node: Node, graph: Graph, x: torch.Tensor, w: torch.Tensor,
                       b: torch.Tensor) -> torch.Tensor | None:
        return torch_activation(node, torch.nn.functional.linear(x, w, b))

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        quantize_filter_and_bias(node, graph, 0 if options.get("linear_per_channel", True) else None)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        a = node.attrs
        return [linear_int(x, w, b, a["input_zero_point"], a["multiplier"], a["shift"],
                           a["output_zero_point"], a["act_min"], a["act_max"])]

    def traversal(self, node: Node, graph: Graph) -> Traversal | None:
        """Rows in order: row r reads input row r and writes output row r."""
        if len(node.inputs) < 2:
            return None
        return row_traversal(node, graph, graph.t(node.inputs[1]).shape[1])

    def macs(self, node: Node, graph: Graph) -> int:
        return int(np.prod(graph.t(node.inputs[1]).shape))
