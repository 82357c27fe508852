"""2-D convolution (regular, grouped and depthwise) with a fused activation.

Weights are OIHW in an NCHW graph, OHWI in an NHWC graph (``conv2d``), and 1HWO for
``depthwise_conv2d``, which the layout pass creates for groups == in_channels. The integer
kernel follows TFLite's reference int8 conv: acc = sum w * (x - zp_in) + bias, per-channel
requantization with double rounding, + zp_out, clamp to the activation range.

With int16 activations ("16x8": int16 input and output, zero points 0, int8 weights, int64
bias) it follows TFLite's 16x8 kernel instead: an int64 accumulator and the single-rounding
int64 requantization of ``intmath.multiply_by_quantized_multiplier_int64``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..intmath import (
    EXACT_FLOAT64,
    INT32_LIMIT,
    exact_float_type,
    max_abs_offset,
    quantize_multiplier,
    requantize,
    requantize_int64,
)
from ..ir import Graph, Node
from ..quant import quantize_bias, symmetric_weight_quant
from .base import (
    ACTIVATION,
    Attr,
    OpDef,
    act_quant,
    activation_range,
    apply_float_activation,
    conv_out_size,
    from_nchw,
    is_int16,
    register,
    to_nchw,
    torch_activation,
)
from .traversal import Traversal, window_traversal


def weight_oihw(node: Node, graph: Graph, w: np.ndarray) -> np.ndarray:
    """The node's weight in torch's OIHW order, whatever the graph layout."""
    if node.op == "depthwise_conv2d":
        return w.transpose(3, 0, 1, 2)
    return w.transpose(0, 3, 1, 2) if graph.layout == "nhwc" else w


def groups_of(node: Node, graph: Graph) -> int:
    if node.op == "depthwise_conv2d":
        x = graph.t(node.inputs[0]).shape
        return x[3]
    return node.attrs["groups"]


def conv2d_int(x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: tuple[int, int],
               padding: tuple[int, int, int, int], dilation: tuple[int, int], groups: int,
               input_zero_point: int, multiplier: np.ndarray, shift: np.ndarray,
               output_zero_point: int, act_min: int, act_max: int) -> np.ndarray:
    """Integer conv on NCHW int8 (or int16: 16x8) input and OIHW int8 weights; returns NCHW
    integers of the input's type."""
    wide = x.dtype == np.int16
    o, cg, kh, kw = w.shape
    depthwise = cg == 1 and o == groups   # one input and one output channel per group
    # the float sums equal the kernel's integer accumulator when no partial sum can be inexact
    # or wrap; depthwise in float64 is slower than the tap loop, in float32 faster
    exact = None
    if np.issubdtype(x.dtype, np.integer):
        bound = cg * kh * kw * max_abs_offset(x.dtype, input_zero_point) * int(np.abs(w.astype(np.int64)).max(initial=0))
        exact = exact_float_type(bound, EXACT_FLOAT64 if wide else INT32_LIMIT)
    if exact is None or (depthwise and exact is np.float64):
        acc_type = np.int64 if wide else np.int32
        acc = _accumulate_loop(x, w, stride, padding, dilation, groups, input_zero_point, acc_type).astype(np.int64)
    else:
        acc = _accumulate_float(x, w, stride, padding, dilation, groups, input_zero_point, exact)
    acc += bias.astype(np.int64)[None, :, None, None]
    m, s = multiplier[None, :, None, None], shift[None, :, None, None]
    if wide:
        return requantize_int64(acc, m, s, act_min, act_max).astype(np.int16)
    return requantize(acc, m, s, output_zero_point, act_min, act_max).astype(np.int8)


def _accumulate_float(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int, int, int],
                      dilation: tuple[int, int], groups: int, input_zero_point: int, dtype: type) -> np.ndarray:
    """sum w * (x - zp) over each window, zero padding, in float32 or float64 through torch
    (exact: see intmath.EXACT_FLOAT64 / EXACT_FLOAT32); int64."""
    ttype = torch.float32 if dtype is np.float32 else torch.float64
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(ttype)
    xt -= input_zero_point
    y = _padded_conv(xt, torch.from_numpy(np.ascontiguousarray(w)).to(ttype), None, padding, stride, dilation, groups)
    return y.numpy().astype(np.int64)


def _padded_conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, padding: tuple[int, int, int, int],
                 stride: tuple[int, int], dilation: tuple[int, int], groups: int) -> torch.Tensor:
    """conv2d with zero padding (top, left, bottom, right): symmetric padding inside the conv
    (no padded copy of the input; the same sums), uneven padding by a padded copy."""
    pt, pl, pb, pr = padding
    if (pt, pl) == (pb, pr):
        return torch.nn.functional.conv2d(x, w, b, stride=tuple(stride), padding=(pt, pl), dilation=tuple(dilation),
                                          groups=groups)
    return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (pl, pr, pt, pb)), w, b, stride=tuple(stride),
                                      dilation=tuple(dilation), groups=groups)


def _accumulate_loop(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int, int, int],
                     dilation: tuple[int, int], groups: int, input_zero_point: int, acc_type: type) -> np.ndarray:
    """The same sums in ``acc_type`` integers, one kernel tap at a time (wrapping like C's int32)."""
    pt, pl, pb, pr = padding
    xs = np.pad(x.astype(acc_type) - input_zero_point, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, h, wd = xs.shape
    o, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    oh = conv_out_size(h, kh, sh, 0, dh)
    ow = conv_out_size(wd, kw, sw, 0, dw)
    wg = w.astype(acc_type).reshape(groups, o // groups, cg, kh, kw)
    depthwise = cg == 1 and o == groups
    acc = np.zeros((n, o, oh, ow) if depthwise else (n, groups, o // groups, oh * ow), dtype=acc_type)
    for i in range(kh):
        for j in range(kw):
            patch = xs[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
            if depthwise:   # elementwise per channel: much faster than tiny batched matmuls
                acc += wg[:, 0, 0, i, j][None, :, None, None] * patch
            else:
                acc += wg[:, :, :, i, j] @ patch.reshape(n, groups, cg, oh * ow)
    return acc.reshape(n, o, oh, ow)


WINDOW = (Attr("stride", "pair"), Attr("padding", "padding"), Attr("dilation", "pair", (1, 1)))


class _ConvBase(OpDef):
    supports_int16 = True
    fusable_activation = True
    weighted = True
    filter_axis = 0
    #: output pixels the C kernels compute as one block (``Traversal.block``)
    pixels_per_block = 1

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        w = weight_oihw(node, graph, np.empty(graph.t(node.inputs[1]).shape, dtype=np.int8))
        n, _, h, wd = (x[0], x[3], x[1], x[2]) if graph.layout == "nhwc" else x
        pt, pl, pb, pr = node.attrs["padding"]
        oh = conv_out_size(h, w.shape[2], node.attrs["stride"][0], pt + pb, node.attrs["dilation"][0])
        ow = conv_out_size(wd, w.shape[3], node.attrs["stride"][1], pl + pr, node.attrs["dilation"][1])
        return [(n, oh, ow, w.shape[0]) if graph.layout == "nhwc" else (n, w.shape[0], oh, ow)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        y = self._conv_torch(node, torch.from_numpy(np.ascontiguousarray(to_nchw(x, graph))),
                             torch.from_numpy(np.ascontiguousarray(weight_oihw(node, graph, w))),
                             torch.from_numpy(b), groups_of(node, graph))
        return [apply_float_activation(node, from_nchw(y.numpy(), graph))]

    @staticmethod
    def _conv_torch(node: Node, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, groups: int) -> torch.Tensor:
        return _padded_conv(x, w, b, tuple(node.attrs["padding"]), node.attrs["stride"], node.attrs["dilation"], groups)

    def weighted_torch(self, node: Node, graph: Graph, x: torch.Tensor, w: torch.Tensor,
                       b: torch.Tensor) -> torch.Tensor | None:
        if graph.layout != "nchw":
            return None
        y = self._conv_torch(node, x, w, b, groups_of(node, graph))
        return torch_activation(node, y)

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        quantize_filter_and_bias(node, graph, self.filter_axis)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        a = node.attrs
        y = conv2d_int(to_nchw(x, graph), weight_oihw(node, graph, w), b, a["stride"], a["padding"],
                       a["dilation"], groups_of(node, graph), a["input_zero_point"], a["multiplier"],
                       a["shift"], a["output_zero_point"], a["act_min"], a["act_max"])
        return [from_nchw(y, graph)]

    def traversal(self, node: Node, graph: Graph) -> Traversal | None:
        """Output pixels in raster order, each reading its window (NHWC graphs only)."""
        if graph.layout != "nhwc":
            return None
        w = weight_oihw(node, graph, np.empty(graph.t(node.inputs[1]).shape, dtype=np.int8))
        return window_traversal(node, graph, (w.shape[2], w.shape[3]), tuple(node.attrs["dilation"]),
                                self.pixels_per_block)

    def macs(self, node: Node, graph: Graph) -> int:
        y = graph.t(node.outputs[0])
        w = weight_oihw(node, graph, np.empty(graph.t(node.inputs[1]).shape, dtype=np.int8))
        return int(y.size * w.shape[1] * w.shape[2] * w.shape[3])


def quantize_filter_and_bias(node: Node, graph: Graph, axis: int | None) -> None:
    """A filtering op's int8 weights (per channel along ``axis``, or per tensor), its int32 (or
    int64, for int16 inputs) bias, and the requantization from its input to its output."""
    x, w, b = (graph.t(n) for n in node.inputs)
    s_in, zp_in = act_quant(graph, x.name)
    s_out, zp_out = act_quant(graph, node.outputs[0])
    w.data, w.quant = symmetric_weight_quant(w.data, axis)
    w.dtype = "int8"
    b.data, b.quant = quantize_bias(b.data, s_in, w.quant.scale, wide=is_int16(graph, x.name))
    b.dtype = str(b.data.dtype)
    set_requant_params(node, graph, s_in, w.quant.scale, s_out, zp_in, zp_out)


def set_requant_params(node: Node, graph: Graph, s_in: float, weight_scales: np.ndarray,
                       s_out: float, zp_in: int, zp_out: int) -> None:
    """Per-channel (M, shift) exactly as TFLite derives them from float32 scales, in double."""
    pairs = [quantize_multiplier(float(s_in) * float(ws) / float(s_out)) for ws in weight_scales]
    node.attrs["multiplier"] = np.array([m for m, _ in pairs], dtype=np.int64)
    node.attrs["shift"] = np.array([s for _, s in pairs], dtype=np.int64)
    node.attrs["input_zero_point"] = zp_in
    node.attrs["output_zero_point"] = zp_out
    node.attrs["act_min"], node.attrs["act_max"] = activation_range(node, graph, node.outputs[0])


@register
class Conv2d(_ConvBase):
    """Regular and grouped convolution; OIHW weights (OHWI in an NHWC graph)."""
    name = "conv2d"
    attributes = (*WINDOW, Attr("groups", "int", 1), ACTIVATION)
    equalizable = True
    depthwise_form = "depthwise_conv2d"
    #: the C kernels (1x1 and im2col matrix products) compute two output pixels at a time
    pixels_per_block = 2


@register
class DepthwiseConv2d(_ConvBase):
    """NHWC only (made by the layout pass from a conv2d with groups == in channels): 1HWO weights."""
    name = "depthwise_conv2d"
    attributes = (*WINDOW, Attr("depth_multiplier", "int", 1), ACTIVATION)
    filter_axis = 3
