"""Max and average 2-D pooling. Output quantization equals the input's (TFLite requires it).

The integer average follows TFLite's reference kernel: the sum over the valid (unpadded)
window divided by the valid count, rounding half away from zero.
"""
from __future__ import annotations

import numpy as np
import torch

from ..ir import Graph, Node
from .traversal import Traversal, window_traversal
from .base import ACTIVATION, Attr, OpDef, Padding, activation_range, apply_float_activation, conv_out_size, from_nchw, register, to_nchw


def _windows(x: np.ndarray, node: Node, fill: int | float) -> tuple[np.ndarray, np.ndarray]:
    """Padded NCHW input as windows [N, C, OH, OW, KH, KW] plus a validity mask of the same tail."""
    kh, kw = node.attrs["kernel"]
    sh, sw = node.attrs["stride"]
    pt, pl, pb, pr = node.attrs["padding"]
    n, c, h, w = x.shape
    oh = conv_out_size(h, kh, sh, pt + pb, 1, node.attrs.get("ceil_mode", False))
    ow = conv_out_size(w, kw, sw, pl + pr, 1, node.attrs.get("ceil_mode", False))
    # extra bottom/right padding so ceil-mode windows stay inside the array
    eb = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    er = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)), constant_values=fill)
    valid = np.pad(np.ones((h, w), dtype=bool), ((pt, pb + eb), (pl, pr + er)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :oh, :ow]
    vwin = np.lib.stride_tricks.sliding_window_view(valid, (kh, kw))[::sh, ::sw][:oh, :ow]
    return win, vwin


class _Pool(OpDef):
    attributes = (Attr("kernel", "pair"), Attr("stride", "pair"), Attr("padding", "padding", Padding(0, 0, 0, 0)),
                  Attr("ceil_mode", "bool", False), ACTIVATION)
    same_quant_as_input = True
    supports_int16 = True   # int16 in and out: the same loops, clamped to the int16 range
    fusable_activation = True

    def accepts_activation(self, activation: dict) -> bool:
        """Only a clamp without a lower bound other than 0: the output keeps the input's
        quantization, so the clamp is a bound on that scale (ReLU, ReLU6)."""
        return activation["min"] in (None, 0.0)

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        n, c, h, w = (x[0], x[3], x[1], x[2]) if graph.layout == "nhwc" else x
        kh, kw = node.attrs["kernel"]
        sh, sw = node.attrs["stride"]
        pt, pl, pb, pr = node.attrs["padding"]
        cm = node.attrs.get("ceil_mode", False)
        oh, ow = conv_out_size(h, kh, sh, pt + pb, 1, cm), conv_out_size(w, kw, sw, pl + pr, 1, cm)
        return [(n, oh, ow, c) if graph.layout == "nhwc" else (n, c, oh, ow)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs["act_min"], node.attrs["act_max"] = activation_range(node, graph, node.outputs[0])

    def traversal(self, node: Node, graph: Graph) -> Traversal | None:
        """Output pixels in raster order, each reading its window (NHWC graphs only)."""
        if graph.layout != "nhwc":
            return None
        return window_traversal(node, graph, tuple(node.attrs["kernel"]), (1, 1))


@register
class MaxPool2d(_Pool):
    name = "max_pool2d"
    lossless = True

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        y = _window_max(to_nchw(xs[0], graph).astype(np.float32, copy=False), node, -np.inf)
        return [apply_float_activation(node, from_nchw(y, graph))]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        # int8 / int16 values are exact in float32: the maximum of each window is the same integer
        x = to_nchw(xs[0], graph)
        y = _window_max(x.astype(np.float32), node, float(np.iinfo(x.dtype).min))
        y = np.clip(y, node.attrs["act_min"], node.attrs["act_max"])
        return [from_nchw(y.astype(xs[0].dtype), graph)]


def _window_max(x: np.ndarray, node: Node, fill: float) -> np.ndarray:
    """The maximum over each window of ``_windows`` (the same padded windows, ``fill`` in the
    padding), separably: the maximum over each row of a window, then over its rows (the
    maximum is exact, so the order changes nothing; NaN propagates as in torch's pooling)."""
    kh, kw = node.attrs["kernel"]
    sh, sw = node.attrs["stride"]
    pt, pl, pb, pr = node.attrs["padding"]
    n, c, h, w = x.shape
    oh = conv_out_size(h, kh, sh, pt + pb, 1, node.attrs.get("ceil_mode", False))
    ow = conv_out_size(w, kw, sw, pl + pr, 1, node.attrs.get("ceil_mode", False))
    eb = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    er = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    if pt or pb + eb or pl or pr + er:
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)), constant_values=fill)
    rows = x[:, :, :, 0: sw * (ow - 1) + 1: sw]
    for j in range(1, kw):
        rows = np.maximum(rows, x[:, :, :, j: j + sw * (ow - 1) + 1: sw])
    y = rows[:, :, 0: sh * (oh - 1) + 1: sh]
    for i in range(1, kh):
        y = np.maximum(y, rows[:, :, i: i + sh * (oh - 1) + 1: sh])
    return np.ascontiguousarray(y)


@register
class AvgPool2d(_Pool):
    """Average over the valid part of each window (count_include_pad=False semantics); torch's
    count_include_pad=True arrives as a ``pad`` (zeros) in front of an unpadded pool."""
    name = "avg_pool2d"

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(to_nchw(xs[0], graph)))
        pt, pl, pb, pr = node.attrs["padding"]
        if (pt, pl) != (pb, pr) or pt > node.attrs["kernel"][0] // 2 or pl > node.attrs["kernel"][1] // 2:
            win, valid = _windows(to_nchw(xs[0], graph), node, 0.0)
            y = win.sum(axis=(4, 5)) / valid.sum(axis=(2, 3))
        else:
            y = torch.nn.functional.avg_pool2d(x, node.attrs["kernel"], node.attrs["stride"], (pt, pl),
                                               node.attrs.get("ceil_mode", False), False).numpy()
        return [apply_float_activation(node, from_nchw(y.astype(np.float32), graph))]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        win, valid = _windows(to_nchw(xs[0], graph).astype(np.int64), node, 0)
        total = win.sum(axis=(4, 5))
        count = valid.sum(axis=(2, 3)).astype(np.int64)
        half = count // 2
        avg = np.where(total > 0, (total + half) // count, -((-total + half) // count))
        y = np.clip(avg, node.attrs["act_min"], node.attrs["act_max"])
        return [from_nchw(y.astype(xs[0].dtype), graph)]
