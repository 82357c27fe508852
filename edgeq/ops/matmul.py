"""Matrix product of two activations over their last two dimensions, leading dimensions
broadcast (attention's Q K^T and A V).

Integer kernel: TFLite's BATCH_MATMUL (``reference/batch_matmul.h``, ``BatchMatMul<int8_t,
int32_t>``; the same in TFLite Micro and LiteRT): ``sum_k (a - zp_a)(b - zp_b)`` in int32,
requantized by ``MultiplyByQuantizedMultiplier`` with ``M(s_a s_b / s_out)`` (double, as
``GetQuantizedConvolutionMultipler``), ``+ zp_out``, saturated. 16x8: int16 operands and output
(zero points 0), an int64 accumulator and the int64 requantization (``BatchMatMul<int16_t,
int64_t>``).

A 4-D product in an NHWC graph is computed on the NCHW view (the operands' last two torch
dimensions); the tflite target puts TRANSPOSEs around BATCH_MATMUL there."""
from __future__ import annotations

import numpy as np
import torch

from ..intmath import (
    EXACT_FLOAT64,
    exact_float_type,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multiplier,
    wrap_int32,
)
from ..ir import Graph, Node
from ..quant import dtype_range
from .base import OpDef, act_quant, from_nchw, is_int16, register, to_nchw


def _torch_view(x: np.ndarray, graph: Graph) -> np.ndarray:
    return to_nchw(x, graph) if x.ndim == 4 else x


def _graph_view(y: np.ndarray, graph: Graph) -> np.ndarray:
    return from_nchw(y, graph) if y.ndim == 4 else y


@register
class BatchMatmul(OpDef):
    name = "batch_matmul"
    supports_int16 = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a, b = (graph.t(n).shape for n in node.inputs)
        if graph.layout == "nhwc" and len(a) == 4:      # stored NHWC: the product is over NCHW dims
            a, b = (tuple(s[i] for i in (0, 3, 1, 2)) for s in (a, b))
            lead = np.broadcast_shapes(a[:-2], b[:-2])
            n, c, h, w = (*lead, a[-2], b[-1])
            return [(n, h, w, c)]
        lead = np.broadcast_shapes(a[:-2], b[:-2])
        return [(*lead, a[-2], b[-1])]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a, b = (_torch_view(x.astype(np.float32), graph) for x in xs)
        return [_graph_view(_batched_matmul(a, b), graph)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        (s1, zp1), (s2, zp2), (so, zpo) = (act_quant(graph, n) for n in (*node.inputs, node.outputs[0]))
        a = node.attrs
        a["multiplier"], a["shift"] = quantize_multiplier(float(s1) * float(s2) / float(so))
        a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"] = zp1, zp2, zpo

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        x1 = _torch_view(xs[0], graph).astype(np.int64) - a["input1_zero_point"]
        x2 = _torch_view(xs[1], graph).astype(np.int64) - a["input2_zero_point"]
        acc = _exact_matmul(x1, x2)     # int64: exact; the int8 kernel accumulates in int32
        dtype = graph.t(node.outputs[0]).dtype
        if is_int16(graph, node.outputs[0]):
            y = multiply_by_quantized_multiplier_int64(acc, a["multiplier"], a["shift"])
        else:
            y = multiply_by_quantized_multiplier(wrap_int32(acc), a["multiplier"], a["shift"])
        y = np.clip(y + a["output_zero_point"], *dtype_range(dtype)).astype(dtype)
        return [_graph_view(y, graph)]

    def macs(self, node: Node, graph: Graph) -> int:
        a = graph.t(node.inputs[0]).shape
        k = a[2] if graph.layout == "nhwc" and len(a) == 4 else a[-1]
        return int(np.prod(self.shape(node, graph)[0])) * int(k)


def _exact_matmul(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """np.matmul of int64 operands, through float32 or float64 (BLAS) where that is exact: every
    partial sum is at most K * max|x1| * max|x2| in magnitude, below 2^24 or 2^53 (see
    intmath.EXACT_FLOAT32 / EXACT_FLOAT64)."""
    if x1.size == 0 or x2.size == 0:
        return np.matmul(x1, x2)
    bound = x1.shape[-1] * int(np.abs(x1).max()) * int(np.abs(x2).max())
    exact = exact_float_type(bound, EXACT_FLOAT64)
    if exact is None:
        return np.matmul(x1, x2)
    return _batched_matmul(x1.astype(exact), x2.astype(exact)).astype(np.int64)


def _batched_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul's result through torch's batched BLAS (numpy loops over the batch in C without
    BLAS: ~10x slower on attention's score and context products). Same dtype as the inputs."""
    return torch.matmul(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))).numpy()
