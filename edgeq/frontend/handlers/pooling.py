"""Handlers of pooling and reductions: max / average / adaptive pooling, mean, argmax."""
from __future__ import annotations


import torch

from ...ir import Node, Tensor
from ..tracer import Tracer, aten, handles, module_path, pair, unsupported


@handles(aten.max_pool2d_with_indices.default, aten.max_pool2d.default)
def _max_pool(t: Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 6
    kernel = pair(args[1])
    stride = pair(args[2]) if args[2] else kernel
    ph, pw = pair(args[3] if args[3] is not None else 0)
    dilation = pair(args[4] if args[4] is not None else 1)
    if dilation != (1, 1):
        raise unsupported(fx, "dilated max pooling")
    t.emit(fx, "max_pool2d", [t.tensor(args[0])],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[5])})


@handles(aten.avg_pool2d.default)
def _avg_pool(t: Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 7
    kernel = pair(args[1])
    stride = pair(args[2]) if args[2] else kernel
    ph, pw = pair(args[3] if args[3] is not None else 0)
    count_include_pad = True if args[5] is None else bool(args[5])
    if args[6] is not None:
        raise unsupported(fx, "avg_pool2d with divisor_override")
    src = t.tensor(args[0])
    if count_include_pad and (ph or pw):
        # padded positions count as zeros: an explicit zero pad, then a pool without padding
        shape = tuple(args[0].meta["val"].shape)
        padded = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_padded"),
                                           (*shape[:2], shape[2] + 2 * ph, shape[3] + 2 * pw))).name
        t.graph.nodes.append(Node("pad", [src], [padded], {"pads": [[0, 0], [0, 0], [ph, ph], [pw, pw]], "value": 0.0},
                                  f"{fx.name}_pad", module_path(fx)))
        src, ph, pw = padded, 0, 0
    t.emit(fx, "avg_pool2d", [src],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[4])})


@handles(aten.mean.dim)
def _mean(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    rank = len(x.meta["val"].shape)
    dims = fx.args[1] if len(fx.args) > 1 and fx.args[1] is not None else range(rank)
    axes = sorted({int(a) % rank for a in dims})
    if 0 in axes:
        raise unsupported(fx, "a mean over the batch dimension")
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    t.emit(fx, "mean", [t.tensor(x)], {"axes": axes, "keepdim": keepdim})


@handles(aten.argmax.default)
def _argmax(t: Tracer, fx: torch.fx.Node) -> None:
    """argmax over one axis, as a model output (the int32 indices feed nothing else)."""
    x = fx.args[0]
    dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    rank = len(x.meta["val"].shape)
    if dim is None or int(dim) % rank == 0:
        raise unsupported(fx, "argmax over the batch dimension or the flattened tensor (give a dim >= 1)")
    if any(u.op != "output" for u in fx.users):
        raise unsupported(fx, "argmax is supported only as a model output (its int32 indices cannot feed "
                               "other layers)")
    t.emit(fx, "argmax", [t.tensor(x)], {"axis": int(dim) % rank, "keepdim": keepdim})


@handles(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    oh, ow = pair(fx.args[1])
    if (oh, ow) == (1, 1):
        t.emit(fx, "mean", [t.tensor(x)], {"axes": [2, 3], "keepdim": True})
        return
    h, w = x.meta["val"].shape[2:]
    if h % oh or w % ow:
        raise unsupported(fx, f"adaptive average pooling {h}x{w} -> {oh}x{ow} is not a plain pooling "
                               "(the input size must be a multiple of the output size)")
    k = (h // oh, w // ow)
    t.emit(fx, "avg_pool2d", [t.tensor(x)], {"kernel": k, "stride": k, "padding": (0, 0, 0, 0), "ceil_mode": False})
