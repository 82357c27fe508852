"""QAT kernels of the weighted ops (conv2d, linear, conv_transpose2d) of an NCHW quantized graph:
the integer accumulation in float64 (exact: every partial sum of int8 x int8/int16 products
stays far below 2^53), then the per-channel requantization of ``tintmath``; int16 inputs
(16x8) take the int64 requantization, as ``run_int`` does."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ir import Graph, Node
from ..ops.conv_transpose2d import transposed_out_size
from . import tintmath as tm
from .kernel import QatKernel, channel_param, float_activation, qat_kernel


def _requantize(node: Node, graph: Graph, acc: torch.Tensor, axis: int) -> torch.Tensor:
    a = node.attrs
    m, s = channel_param(a["multiplier"], acc.dim(), axis), channel_param(a["shift"], acc.dim(), axis)
    if graph.t(node.inputs[0]).dtype == "int16":
        return tm.requantize_int64(acc, m, s, a["act_min"], a["act_max"])
    return tm.requantize(acc, m, s, a["output_zero_point"], a["act_min"], a["act_max"])


def _centered(node: Node, x: torch.Tensor) -> torch.Tensor:
    return (x - int(node.attrs["input_zero_point"])).to(torch.float64)


@qat_kernel
class Conv2d(QatKernel):
    op = "conv2d"

    def unsupported(self, node: Node, graph: Graph) -> str | None:
        return None if graph.layout == "nchw" else "QAT runs the NCHW quantized graph"

    def _conv(self, node: Node, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        pt, pl, pb, pr = node.attrs["padding"]
        return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=tuple(node.attrs["stride"]),
                        dilation=tuple(node.attrs["dilation"]), groups=node.attrs["groups"])

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x, w, b = xs
        acc = tm.exact_int(self._conv(node, _centered(node, x), w.to(torch.float64), None))
        return _requantize(node, graph, acc + b.reshape(1, -1, 1, 1), 1)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, self._conv(node, *xs))


@qat_kernel
class Linear(QatKernel):
    op = "linear"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x, w, b = xs
        acc = tm.exact_int(_centered(node, x) @ w.to(torch.float64).T) + b
        return _requantize(node, graph, acc, acc.dim() - 1)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, F.linear(*xs))


@qat_kernel
class ConvTranspose2d(QatKernel):
    """TRANSPOSE_CONV's scatter-add is torch's unpadded transposed convolution; the output is the
    window [p, p + out) of it (zero-extended where output padding reaches past it)."""
    op = "conv_transpose2d"

    def _conv(self, node: Node, graph: Graph, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        a = node.attrs
        o, cg, kh, kw = w.shape
        g = a["groups"]
        wt = w.reshape(g, o // g, cg, kh, kw).transpose(1, 2).reshape(g * cg, o // g, kh, kw)
        full = F.conv_transpose2d(x, wt, stride=tuple(a["stride"]), groups=g, dilation=tuple(a["dilation"]))
        ph, pw = a["padding"][:2]
        oh, ow = (transposed_out_size(size, k, s, p, op, d) for size, k, s, p, op, d in
                  zip(x.shape[2:], (kh, kw), a["stride"], (ph, pw), a["output_padding"], a["dilation"]))
        full = F.pad(full, (0, max(0, pw + ow - full.shape[3]), 0, max(0, ph + oh - full.shape[2])))
        return full[:, :, ph:ph + oh, pw:pw + ow]

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x, w, b = xs
        acc = tm.exact_int(self._conv(node, graph, _centered(node, x), w.to(torch.float64)))
        return _requantize(node, graph, acc + b.reshape(1, -1, 1, 1), 1)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x, w, b = xs
        return float_activation(node, self._conv(node, graph, x, w) + b.reshape(1, -1, 1, 1))
