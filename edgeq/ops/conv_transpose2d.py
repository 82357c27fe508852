"""2-D transposed convolution (torch ``ConvTranspose2d``) with a fused activation.

Weights are stored like ``conv2d``'s, one filter per output channel: OIHW ``[O, I/groups, kH,
kW]`` in an NCHW graph, OHWI in an NHWC graph (TFLite TRANSPOSE_CONV's filter layout), int8
symmetric per output channel (axis 0); torch's ``[I, O/groups, kH, kW]`` weight is rearranged
by the front end. attrs: ``stride``, ``padding`` (a ``Padding``; torch's is symmetric: (pH, pW, pH, pW)), ``output_padding``,
``dilation``, ``groups``.

Output size (H - 1) * s - 2p + d (k - 1) + output_padding + 1. The integer kernel is TFLite's
reference int8 TRANSPOSE_CONV (``reference_integer_ops::TransposeConv``): every input pixel
scatters ``w * (x - zp_in)`` into an int32 accumulator at ``y * s - p + d * k``, then per output
channel ``+ bias``, ``MultiplyByQuantizedMultiplier`` (multipliers as conv's), ``+ zp_out`` and
the activation clamp. Output positions no input reaches (output_padding beyond the padding) hold
the bias alone, as in torch.
"""
from __future__ import annotations

import numpy as np
import torch

from ..intmath import requantize
from ..ir import Graph, Node
from ..quant import quantize_bias, symmetric_weight_quant
from .base import ACTIVATION, Attr, OpDef, act_quant, apply_float_activation, from_nchw, register, to_nchw
from .conv2d import set_requant_params


def weight_oihw(graph: Graph, w: np.ndarray) -> np.ndarray:
    return w.transpose(0, 3, 1, 2) if graph.layout == "nhwc" else w


def torch_weight(w_oihw: np.ndarray, groups: int) -> np.ndarray:
    """IR OIHW filters -> torch's ConvTranspose2d weight [I, O/groups, kH, kW]."""
    o, cg, kh, kw = w_oihw.shape
    return np.ascontiguousarray(w_oihw.reshape(groups, o // groups, cg, kh, kw)
                                .transpose(0, 2, 1, 3, 4).reshape(groups * cg, o // groups, kh, kw))


def from_torch_weight(w_t: np.ndarray, groups: int) -> np.ndarray:
    """torch's ConvTranspose2d weight [I, O/groups, kH, kW] -> IR OIHW filters."""
    i, og, kh, kw = w_t.shape
    return np.ascontiguousarray(w_t.reshape(groups, i // groups, og, kh, kw)
                                .transpose(0, 2, 1, 3, 4).reshape(groups * og, i // groups, kh, kw))


def transposed_out_size(size: int, kernel: int, stride: int, padding: int, output_padding: int,
                        dilation: int) -> int:
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d_int(x: np.ndarray, w: np.ndarray, bias: np.ndarray, attrs: dict,
                         out_hw: tuple[int, int]) -> np.ndarray:
    """Integer transposed conv on NCHW int8 input and OIHW int8 filters; returns NCHW int8."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g = attrs["groups"]
    sh, sw = attrs["stride"]
    ph, pw = attrs["padding"][:2]   # torch pads both sides alike
    dh, dw = attrs["dilation"]
    oh, ow = out_hw
    full_h, full_w = (h - 1) * sh + dh * (kh - 1) + 1, (wd - 1) * sw + dw * (kw - 1) + 1
    acc = np.zeros((n, o, max(full_h, ph + oh), max(full_w, pw + ow)), dtype=np.int32)
    xg = (x.astype(np.int32) - attrs["input_zero_point"]).reshape(n, g, cg, h * wd)
    wg = w.astype(np.int32).reshape(g, o // g, cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = (wg[:, :, :, i, j] @ xg).reshape(n, o, h, wd)
            acc[:, :, i * dh: i * dh + (h - 1) * sh + 1: sh, j * dw: j * dw + (wd - 1) * sw + 1: sw] += contrib
    acc = acc[:, :, ph: ph + oh, pw: pw + ow].astype(np.int64) + bias.astype(np.int64)[None, :, None, None]
    m, s = attrs["multiplier"], attrs["shift"]
    out = requantize(acc, m[None, :, None, None], s[None, :, None, None], attrs["output_zero_point"],
                     attrs["act_min"], attrs["act_max"])
    return out.astype(np.int8)


@register
class ConvTranspose2d(OpDef):
    name = "conv_transpose2d"
    attributes = (Attr("stride", "pair"), Attr("padding", "padding"), Attr("output_padding", "pair", (0, 0)),
                  Attr("dilation", "pair", (1, 1)), Attr("groups", "int", 1), ACTIVATION)
    fusable_activation = True
    weighted = True
    filter_axis = 0

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        w = weight_oihw(graph, np.empty(graph.t(node.inputs[1]).shape, dtype=np.int8))
        n, _, h, wd = (x[0], x[3], x[1], x[2]) if graph.layout == "nhwc" else x
        a = node.attrs
        oh, ow = (transposed_out_size(size, k, s, p, op, d) for size, k, s, p, op, d in
                  zip((h, wd), w.shape[2:], a["stride"], a["padding"][:2], a["output_padding"], a["dilation"]))
        return [(n, oh, ow, w.shape[0]) if graph.layout == "nhwc" else (n, w.shape[0], oh, ow)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        a = node.attrs
        y = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(np.ascontiguousarray(to_nchw(x, graph))),
            torch.from_numpy(torch_weight(weight_oihw(graph, w), a["groups"])), torch.from_numpy(b),
            stride=tuple(a["stride"]), padding=tuple(a["padding"][:2]), output_padding=tuple(a["output_padding"]),
            groups=a["groups"], dilation=tuple(a["dilation"]))
        return [apply_float_activation(node, from_nchw(y.numpy(), graph))]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        x, w, b = (graph.t(n) for n in node.inputs)
        s_in, zp_in = act_quant(graph, x.name)
        s_out, zp_out = act_quant(graph, node.outputs[0])
        w.data, w.quant = symmetric_weight_quant(w.data, self.filter_axis)
        w.dtype = "int8"
        b.data, b.quant = quantize_bias(b.data, s_in, w.quant.scale)
        b.dtype = "int32"
        set_requant_params(node, graph, s_in, w.quant.scale, s_out, zp_in, zp_out)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = xs
        y_shape = self.shape(node, graph)[0]
        out_hw = (y_shape[1], y_shape[2]) if graph.layout == "nhwc" else (y_shape[2], y_shape[3])
        y = conv_transpose2d_int(to_nchw(x, graph), weight_oihw(graph, w), b, node.attrs, out_hw)
        return [from_nchw(y, graph)]

    def macs(self, node: Node, graph: Graph) -> int:
        x = graph.t(node.inputs[0])
        w = weight_oihw(graph, np.empty(graph.t(node.inputs[1]).shape, dtype=np.int8))
        return int(x.size * w.shape[0] // node.attrs["groups"] * w.shape[2] * w.shape[3])
