"""Handlers of pooling and reductions: max / average / adaptive pooling, mean, sum, maximum,
argmax."""
from __future__ import annotations

from typing import Any


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
    t.emit(fx, "max_pool2d", [t.batch_first(fx, args[0])],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[5])}, batch=0)


@handles(aten.avg_pool2d.default)
def _avg_pool(t: Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 7
    kernel = pair(args[1])
    stride = pair(args[2]) if args[2] else kernel
    ph, pw = pair(args[3] if args[3] is not None else 0)
    count_include_pad = True if args[5] is None else bool(args[5])
    if args[6] is not None:
        raise unsupported(fx, "avg_pool2d with divisor_override")
    src = t.batch_first(fx, args[0])
    if count_include_pad and (ph or pw):
        # padded positions count as zeros: an explicit zero pad, then a pool without padding
        shape = t.shape(args[0])
        padded = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_padded"),
                                           (*shape[:2], shape[2] + 2 * ph, shape[3] + 2 * pw))).name
        t.graph.nodes.append(Node("pad", [src], [padded], {"pads": [[0, 0], [0, 0], [ph, ph], [pw, pw]], "value": 0.0},
                                  f"{fx.name}_pad", module_path(fx)))
        src, ph, pw = padded, 0, 0
    t.emit(fx, "avg_pool2d", [src],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[4])}, batch=0)


def _reduction(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, dims: Any, keepdim: bool) -> tuple[list[int], int | None]:
    """(IR axes, the output's batch axis) of a reduction of ``x`` over torch ``dims``."""
    rank = len(t.shape(x))
    dims = range(rank) if dims is None else ([dims] if isinstance(dims, int) else dims)
    torch_axes = sorted({int(a) % rank for a in dims})
    axes = sorted(t.ir_dim(fx, x, a) for a in torch_axes)
    b = t.batch_axis(x)
    if b is not None and not keepdim:
        b -= sum(1 for a in torch_axes if a < b)
    return axes, b


@handles(aten.mean.dim)
def _mean(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    axes, batch = _reduction(t, fx, x, fx.args[1] if len(fx.args) > 1 else None, keepdim)
    t.emit(fx, "mean", [t.tensor(x)], {"axes": axes, "keepdim": keepdim}, batch=batch)


@handles(aten.sum.dim_IntList)
def _sum(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    axes, batch = _reduction(t, fx, x, fx.args[1] if len(fx.args) > 1 else None, keepdim)
    t.emit(fx, "sum", [t.tensor(x)], {"axes": axes, "keepdim": keepdim}, batch=batch)


@handles(aten.amax.default, aten.max.dim)
def _amax(t: Tracer, fx: torch.fx.Node) -> None:
    """The maximum over axes (``torch.amax``; ``torch.max(x, dim)`` whose values alone are used:
    getitem refuses its indices)."""
    x = fx.args[0]
    dims = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim", [])
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    if dims in (None, []) or (isinstance(dims, (list, tuple)) and not dims):
        raise unsupported(fx, "a maximum over the whole tensor (give the dims to reduce)")
    axes, batch = _reduction(t, fx, x, dims, keepdim)
    if t.batch_axis(x) in axes:
        raise unsupported(fx, "a maximum over the batch dimension")
    t.emit(fx, "reduce_max", [t.tensor(x)], {"axes": axes, "keepdim": keepdim}, batch=batch)


@handles(aten.argmax.default)
def _argmax(t: Tracer, fx: torch.fx.Node) -> None:
    """argmax over one axis, as a model output (the int32 indices feed nothing else)."""
    x = fx.args[0]
    dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    if dim is None:
        raise unsupported(fx, "argmax over the flattened tensor (give a dim)")
    if any(u.op != "output" for u in fx.users):
        raise unsupported(fx, "argmax is supported only as a model output (its int32 indices cannot feed "
                               "other layers)")
    axes, batch = _reduction(t, fx, x, int(dim), keepdim)
    t.emit(fx, "argmax", [t.tensor(x)], {"axis": axes[0], "keepdim": keepdim}, batch=batch)


@handles(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    oh, ow = pair(fx.args[1])
    xin = t.batch_first(fx, x)
    if (oh, ow) == (1, 1):
        t.emit(fx, "mean", [xin], {"axes": [2, 3], "keepdim": True}, batch=0)
        return
    h, w = t.shape(x)[2:]
    if h % oh or w % ow:
        raise unsupported(fx, f"adaptive average pooling {h}x{w} -> {oh}x{ow} is not a plain pooling "
                               "(the input size must be a multiple of the output size)")
    k = (h // oh, w // ow)
    t.emit(fx, "avg_pool2d", [xin], {"kernel": k, "stride": k, "padding": (0, 0, 0, 0), "ceil_mode": False},
           batch=0)
