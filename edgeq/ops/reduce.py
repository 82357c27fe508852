"""Reductions and heads: mean, sum and maximum over any axes, argmax (an int32 index output).

Axes refer to the graph's layout (``passes.to_nhwc`` remaps them); dimension 0 (batch) is never
reduced.

``mean`` is TFLite's int8 MEAN (``reference_ops::QuantizedMeanOrSum``, tflite-micro
``reduce_common.cc`` / LiteRT ``reduce.cc``): the int32 sum of the raw values minus
``zp_in * n`` is requantized by ``MultiplyByQuantizedMultiplier`` with the input/output
multiplier ``QuantizeMultiplier(s_in / s_out)`` rescaled by ``1/n``:
``shift_n = min(floor(log2 n), 32, 31 + shift)``, ``M' = (M << shift_n) // n``,
``shift' = shift - shift_n``; then ``+ zp_out`` and saturation. Some TFLite Micro versions
(``EvalIntegerMean`` in ``reduce_common.cc``) compute the mean differently, as the truncating
``sum / n`` of the raw values, when input and output quantization are identical (the
tflite-micro wheel validated here does not), so ``adjust_output_quant`` moves an identical output
scale by one float32 ulp: every runtime then runs the requantizing algorithm above. Spatial means of
4-D tensors never get here: ``passes.lower_global_pool`` turns them into a global
``avg_pool2d``. int16 (16x8): the same algorithm on int16 values with zero points 0.

``sum`` is the same kernel computing a mean at the scale ``s_out / n`` (see ``Sum``).

``reduce_max`` (torch's amax, and max over a dim when its indices are unused) is exact: the
largest int8 value at the input's quantization (TFLite REDUCE_MAX needs equal input and output
quantization; dequantization is increasing).

``argmax`` returns int32 indices (TFLite ARG_MAX with output_type int32; the first index of the
maximum on ties, as torch). Its integer kernel compares the int8 values: the index of the
largest dequantized value, since dequantization is increasing. It is meant for model outputs.
"""
from __future__ import annotations

import numpy as np

from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..ir import Graph, Node
from ..quant import dtype_range
from .base import Attr, OpDef, act_quant, register


def reduced_shape(shape: tuple[int, ...], axes: list[int], keepdim: bool) -> tuple[int, ...]:
    axes_set = {a % len(shape) for a in axes}
    if keepdim:
        return tuple(1 if i in axes_set else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes_set)


def mean_multiplier(multiplier: int, shift: int, n: int) -> tuple[int, int]:
    """QuantizedMeanOrSum's rescaling of (M, shift) by 1/n (all integer, as the kernels do it)."""
    shift_n = min(n.bit_length() - 1, 32, 31 + shift)
    return int((int(multiplier) << shift_n) // n), int(shift - shift_n)


def reduced_count(node: Node, graph: Graph) -> int:
    shape = graph.t(node.inputs[0]).shape
    return int(np.prod([shape[a] for a in node.attrs["axes"]], dtype=np.int64))


def set_mean_params(node: Node, graph: Graph, mean_scale: float) -> None:
    """QuantizedMeanOrSum's integer parameters for a mean whose output has ``mean_scale``."""
    s_in, zp_in = act_quant(graph, node.inputs[0])
    n = reduced_count(node, graph)
    m, sh = quantize_multiplier(float(s_in) / float(np.float32(mean_scale)))
    a = node.attrs
    a["num_elements"] = n
    a["multiplier"], a["shift"] = mean_multiplier(m, sh, n)
    a["input_zero_point"], a["output_zero_point"] = zp_in, act_quant(graph, node.outputs[0])[1]


def mean_int(a: dict, x: np.ndarray, dtype: str) -> np.ndarray:
    """QuantizedMeanOrSum (compute_sum false) with the parameters of ``set_mean_params``."""
    total = x.astype(np.int64).sum(axis=tuple(a["axes"]), keepdims=a["keepdim"])
    shifted = total - a["input_zero_point"] * a["num_elements"]
    y = multiply_by_quantized_multiplier(shifted, a["multiplier"], a["shift"]) + a["output_zero_point"]
    return np.clip(y, *dtype_range(dtype)).astype(dtype)


def _distinct_from_input(graph: Graph, node: Node, scale: float, zero_point: int, n: int = 1) -> float:
    """``scale`` moved by one float32 ulp when the mean's output quantization would equal its
    input's (see the module docstring)."""
    s_in, zp_in = act_quant(graph, node.inputs[0])
    if np.float32(np.float32(scale) / np.float32(n)) == np.float32(s_in) and zero_point == zp_in:
        scale = float(np.nextafter(np.float32(scale), np.float32(np.inf)))
    return scale


class _Reduce(OpDef):
    attributes = (Attr("axes", "axes"), Attr("keepdim", "bool", False))
    supports_int16 = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [reduced_shape(graph.t(node.inputs[0]).shape, node.attrs["axes"], node.attrs["keepdim"])]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [mean_int(node.attrs, xs[0], graph.t(node.outputs[0]).dtype)]

    def macs(self, node: Node, graph: Graph) -> int:
        return graph.t(node.inputs[0]).size


@register
class Mean(_Reduce):
    """attrs['axes']: sorted non-negative axes; attrs['keepdim']. int16 (16x8): the same
    algorithm on int16 values (zero points 0), as TFLite's int16 MEAN."""
    name = "mean"
    spatial_pool = "avg_pool2d"

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].mean(axis=tuple(node.attrs["axes"]), keepdims=node.attrs["keepdim"]).astype(np.float32)]

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        return _distinct_from_input(graph, node, scale, zero_point), zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        set_mean_params(node, graph, act_quant(graph, node.outputs[0])[0])


@register
class Sum(_Reduce):
    """attrs['axes']: sorted non-negative axes; attrs['keepdim'].

    Integer kernel: TFLite's MEAN computing the mean at scale ``s_out / n`` (``mean_scale``),
    whose integers are the sum's at ``s_out``. TFLite's own SUM is not exact in LiteRT's
    reference kernels: ``reduce.cc`` hands the int8 (and int16) data to QuantizedMeanOrSum
    as uint8 (``GetTensorData<uint8_t>``), so negative values are read as 128..255. The tflite
    target writes MEAN into a tensor at ``mean_scale`` and relabels it (RESHAPE)."""
    name = "sum"

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].astype(np.float64).sum(axis=tuple(node.attrs["axes"]), keepdims=node.attrs["keepdim"])
                .astype(np.float32)]

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        return _distinct_from_input(graph, node, scale, zero_point, reduced_count(node, graph)), zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s_out = act_quant(graph, node.outputs[0])[0]
        node.attrs["mean_scale"] = float(np.float32(s_out) / np.float32(reduced_count(node, graph)))
        set_mean_params(node, graph, node.attrs["mean_scale"])


@register
class ReduceMax(_Reduce):
    """attrs['axes']: sorted non-negative axes; attrs['keepdim']. Same quantization in and out."""
    name = "reduce_max"
    spatial_pool = "max_pool2d"
    supports_int16 = False
    lossless = True
    same_quant_as_input = True

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].max(axis=tuple(node.attrs["axes"]), keepdims=node.attrs["keepdim"]).astype(np.float32)]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [xs[0].max(axis=tuple(node.attrs["axes"]), keepdims=node.attrs["keepdim"])]


@register
class ArgMax(OpDef):
    """attrs['axis']: non-negative axis; attrs['keepdim']. Output int32 indices."""
    name = "argmax"
    attributes = (Attr("axis", "axis"), Attr("keepdim", "bool", False))
    output_dtype = "int32"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [reduced_shape(graph.t(node.inputs[0]).shape, [node.attrs["axis"]], node.attrs["keepdim"])]

    def _argmax(self, node: Node, x: np.ndarray) -> np.ndarray:
        y = np.argmax(x, axis=node.attrs["axis"]).astype(np.int32)
        return np.expand_dims(y, node.attrs["axis"]) if node.attrs["keepdim"] else y

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [self._argmax(node, xs[0])]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [self._argmax(node, xs[0])]
