"""QAT kernels of the ops that move, pool or reduce values: reshape, transpose, slice, concat,
pad, gather, resize_nearest, resize_bilinear, max_pool2d, avg_pool2d, mean, sum, argmax. The
same indexing runs on the int64 tensor (integer forward) and the float one (surrogate); pooling
sums run in float64, where they are exact."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..ir import Graph, Node
from ..ops import get_op
from ..ops.base import conv_out_size
from ..ops.data_movement import bilinear_source
from . import tintmath as tm
from .elementwise import requant
from .kernel import QatKernel, index_pad, out_dtype, qat_kernel, saturate


class _Move(QatKernel):
    """The same data movement on integers and floats."""

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.move(node, graph, xs[0])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.move(node, graph, xs[0])


@qat_kernel
class Reshape(_Move):
    op = "reshape"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *node.attrs["shape"])


@qat_kernel
class Transpose(_Move):
    op = "transpose"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*node.attrs["perm"])


@qat_kernel
class Slice(_Move):
    op = "slice"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        a = node.attrs
        idx = tuple(slice(b, e, s) if i else slice(None)
                    for i, (b, e, s) in enumerate(zip(a["begin"], a["end"], a["strides"])))
        return x[idx]


@qat_kernel
class ResizeNearest(_Move):
    op = "resize_nearest"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        ih, iw = get_op(node.op).indices(node, graph)
        return x[:, :, torch.from_numpy(ih)][:, :, :, torch.from_numpy(iw)]


@qat_kernel
class Pad(QatKernel):
    op = "pad"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return index_pad(xs[0], node.attrs["pads"], node.attrs.get("mode", "constant"), int(node.attrs["pad_value"]))

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return index_pad(xs[0], node.attrs["pads"], node.attrs.get("mode", "constant"),
                         float(node.attrs.get("value", 0.0)))


def _batch(xs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Constant parts (batch 1, a class token) repeated over the activations' batch."""
    n = max(x.shape[0] for x in xs)
    return [x.expand(n, *x.shape[1:]) if x.shape[0] != n else x for x in xs]


@qat_kernel
class Concat(QatKernel):
    op = "concat"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        parts = [requant(x, p) for x, p in zip(xs, node.attrs["requant"])]
        return torch.cat(_batch(parts), node.attrs["axis"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(_batch(xs), node.attrs["axis"])


def _padded(node: Node, x: torch.Tensor, fill: float) -> tuple[torch.Tensor, int, int]:
    """The NCHW input padded as ``ops.pool._windows`` pads it (ceil-mode windows kept inside)."""
    kh, kw = node.attrs["kernel"]
    sh, sw = node.attrs["stride"]
    pt, pl, pb, pr = node.attrs["padding"]
    h, w = x.shape[2:]
    oh = conv_out_size(h, kh, sh, pt + pb, 1, node.attrs.get("ceil_mode", False))
    ow = conv_out_size(w, kw, sw, pl + pr, 1, node.attrs.get("ceil_mode", False))
    eb = max(0, (oh - 1) * sh + kh - (h + pt + pb))
    er = max(0, (ow - 1) * sw + kw - (w + pl + pr))
    return F.pad(x, (pl, pr + er, pt, pb + eb), value=fill), oh, ow


def _window_sum(node: Node, x: torch.Tensor) -> torch.Tensor:
    xp, oh, ow = _padded(node, x, 0.0)
    s = F.avg_pool2d(xp, node.attrs["kernel"], node.attrs["stride"], divisor_override=1)
    return s[:, :, :oh, :ow]


@qat_kernel
class MaxPool2d(QatKernel):
    op = "max_pool2d"

    def _max(self, node: Node, x: torch.Tensor, fill: float) -> torch.Tensor:
        xp, oh, ow = _padded(node, x, fill)
        return F.max_pool2d(xp, node.attrs["kernel"], node.attrs["stride"])[:, :, :oh, :ow]

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        lo = float(np.iinfo(graph.t(node.inputs[0]).dtype).min)
        y = tm.exact_int(self._max(node, xs[0].to(torch.float64), lo))
        return y.clamp(node.attrs["act_min"], node.attrs["act_max"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        y = self._max(node, xs[0], float("-inf"))
        act = node.attrs.get("activation")
        return y if not act else y.clamp(min=act["min"], max=act["max"])


@qat_kernel
class AvgPool2d(QatKernel):
    op = "avg_pool2d"

    def _count(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return _window_sum(node, torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype))

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0].to(torch.float64)
        total = tm.exact_int(_window_sum(node, x))
        count = tm.exact_int(self._count(node, x))
        half = count // 2
        avg = torch.where(total > 0, torch.div(total + half, count, rounding_mode="floor"),
                          -torch.div(-total + half, count, rounding_mode="floor"))
        return avg.clamp(node.attrs["act_min"], node.attrs["act_max"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        y = _window_sum(node, xs[0]) / self._count(node, xs[0])
        act = node.attrs.get("activation")
        return y if not act else y.clamp(min=act["min"], max=act["max"])


class _Reduce(QatKernel):
    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        total = xs[0].sum(dim=tuple(a["axes"]), keepdim=a["keepdim"])
        shifted = total - a["input_zero_point"] * a["num_elements"]
        y = tm.multiply_by_quantized_multiplier(shifted, a["multiplier"], a["shift"]) + a["output_zero_point"]
        return saturate(y, out_dtype(node, graph))


@qat_kernel
class Mean(_Reduce):
    op = "mean"

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return xs[0].mean(dim=tuple(node.attrs["axes"]), keepdim=node.attrs["keepdim"])


@qat_kernel
class Sum(_Reduce):
    op = "sum"

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return xs[0].sum(dim=tuple(node.attrs["axes"]), keepdim=node.attrs["keepdim"])


@qat_kernel
class ReduceMax(_Move):
    """The maximum picks values (integers or floats alike); its gradient goes to the maxima."""
    op = "reduce_max"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=tuple(node.attrs["axes"]), keepdim=node.attrs["keepdim"])


@qat_kernel
class ArgMax(QatKernel):
    """Indices: no gradient flows through them."""
    op = "argmax"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.argmax(xs[0], dim=node.attrs["axis"], keepdim=node.attrs["keepdim"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.int_forward(node, graph, xs).to(torch.float32)


@qat_kernel
class Gather(_Move):
    op = "gather"

    def move(self, node: Node, graph: Graph, x: torch.Tensor) -> torch.Tensor:
        idx = torch.from_numpy(np.asarray(graph.t(node.inputs[1]).data, dtype=np.int64).reshape(-1))
        return x.index_select(node.attrs["axis"], idx)

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.move(node, graph, xs[0])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.move(node, graph, xs[0])


@qat_kernel
class ResizeBilinear(QatKernel):
    """TFLite's integer RESIZE_BILINEAR (``ops.data_movement``): source positions in 1/1024 pixel
    (``bilinear_source``), the four neighbours weighted in int64, rounded half away from zero."""
    op = "resize_bilinear"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x = xs[0]
        (oh, ow), ac = node.attrs["size"], bool(node.attrs["align_corners"])
        y0, y1, fy = (torch.from_numpy(v) for v in bilinear_source(x.shape[2], oh, ac))
        x0, x1, fx = (torch.from_numpy(v) for v in bilinear_source(x.shape[3], ow, ac))
        fy, fx = fy[:, None], fx[None, :]
        rows0, rows1 = x[:, :, y0], x[:, :, y1]
        acc = (rows0[..., x0] * ((1024 - fy) * (1024 - fx)) + rows1[..., x0] * (fy * (1024 - fx))
               + rows0[..., x1] * ((1024 - fy) * fx) + rows1[..., x1] * (fy * fx))
        acc = acc + torch.where(acc > 0, torch.tensor(1 << 19), torch.tensor(-(1 << 19)))
        return torch.where(acc < 0, -((-acc) >> 20), acc >> 20)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return F.interpolate(xs[0], size=tuple(node.attrs["size"]), mode="bilinear",
                             align_corners=bool(node.attrs["align_corners"]))
