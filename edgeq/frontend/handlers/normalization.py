"""Handlers of normalizations: LayerNorm and GroupNorm (decomposed into the primitives TFLite
runs integer-only: MEAN, SQUARED_DIFFERENCE, RSQRT, SUB, MUL, ADD) and vector norms (an L2
normalization when the norm divides its own input, F.normalize's pattern)."""
from __future__ import annotations

import numpy as np
import torch

from ..tracer import Tracer, aten, handles, unsupported


def _normalized(t: Tracer, fx: torch.fx.Node, xin: str, full: tuple[int, ...], axes: list[int], eps: float) -> str:
    """(x - mean) * rsqrt(mean((x - mean)^2) + eps) over the IR ``axes`` of ``xin`` (shape ``full``)."""
    stat = tuple(1 if d in axes else n for d, n in enumerate(full))
    mean = t.intermediate(fx, "mean", [xin], "mean", {"axes": axes, "keepdim": True}, shape=stat)
    sqd = t.intermediate(fx, "squared_difference", [xin, mean], "squared_difference", shape=full)
    var = t.intermediate(fx, "mean", [sqd], "variance", {"axes": axes, "keepdim": True}, shape=stat)
    eps_c = t.constant(f"{fx.name}_eps", np.full((1,) * len(stat), float(eps), np.float32))
    var_eps = t.intermediate(fx, "add", [var, eps_c], "variance_eps", shape=stat)
    rstd = t.intermediate(fx, "rsqrt", [var_eps], "rstd", shape=stat)
    centered = t.intermediate(fx, "sub", [xin, mean], "centered", shape=full)
    return t.intermediate(fx, "mul", [centered, rstd], "normalized", shape=full)


def _affine(t: Tracer, fx: torch.fx.Node, y: str, weight: torch.fx.Node | None, bias: torch.fx.Node | None,
            param_shape: tuple[int, ...], out_batch: int | None) -> None:
    """y * gamma + beta (either may be absent) as ``fx``'s output."""
    full = t.graph.t(y).shape
    if weight is not None:
        y = t.intermediate(fx, "mul", [y, t.constant(f"{fx.name}_gamma", t.const_array(weight).reshape(param_shape))],
                           "scaled", shape=full)
    if bias is None:
        t.alias_tensor(fx, y, out_batch)
        return
    t.emit(fx, "add", [y, t.constant(f"{fx.name}_beta", t.const_array(bias).reshape(param_shape))], batch=out_batch)


@handles(aten.native_layer_norm.default)
def _layer_norm(t: Tracer, fx: torch.fx.Node) -> None:
    """(x - mean) * rsqrt(mean((x - mean)^2) + eps) * gamma + beta over the last dimensions.
    Output 0 (the normalized tensor) is the node; mean and rstd (outputs 1, 2) are refused
    by getitem."""
    x, normalized_shape, weight, bias, eps = fx.args
    rank, dims = len(t.shape(x)), len(normalized_shape)
    axes = sorted(t.ir_dim(fx, x, d) for d in range(rank - dims, rank))
    full = t.ir_shape(x)        # fx's own batch axis is not known yet: shapes come from x
    y = _normalized(t, fx, t.tensor(x), full, axes, eps)
    param_shape = (1, *([1] * (len(full) - 1 - dims)), *t.shape(x)[rank - dims:])
    _affine(t, fx, y, weight, bias, param_shape, t.batch_axis(x))


@handles(aten.native_group_norm.default)
def _group_norm(t: Tracer, fx: torch.fx.Node) -> None:
    """GroupNorm: the layer norm's statistics over each group of channels and all positions,
    then a per-channel gamma, beta. One group (or one channel per group) normalizes the
    (1, C, ...) tensor over its own axes; other groupings go through a (1, G, C/G * positions)
    view and back."""
    x, weight, bias, _n, channels, _positions, groups, eps = fx.args
    xin = t.batch_first(fx, x)
    full = t.graph.t(xin).shape
    c, g = int(channels), int(groups)
    rank = len(full)
    if g == 1:
        y = _normalized(t, fx, xin, full, list(range(1, rank)), eps)
    elif g == c:
        y = _normalized(t, fx, xin, full, list(range(2, rank)), eps)
    else:
        grouped_shape = (1, g, int(np.prod(full[1:])) // g)
        grouped = t.reshaped(xin, grouped_shape, fx, "grouped")
        y = t.reshaped(_normalized(t, fx, grouped, grouped_shape, [2], eps), full, fx, "ungrouped")
    _affine(t, fx, y, weight, bias, (1, c, *([1] * (rank - 2))), 0)


@handles(aten.linalg_vector_norm.default)
def _vector_norm(t: Tracer, fx: torch.fx.Node) -> None:
    """sqrt(sum(x^2)) over the given axes (the Euclidean norm only)."""
    x = fx.args[0]
    order = float(fx.args[1]) if len(fx.args) > 1 else float(fx.kwargs.get("ord", 2))
    dims = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("dim")
    keepdim = bool(fx.args[3]) if len(fx.args) > 3 else bool(fx.kwargs.get("keepdim", False))
    if order != 2.0 or dims is None:
        raise unsupported(fx, "a vector norm other than the Euclidean norm over given dimensions")
    rank = len(t.shape(x))
    torch_axes = sorted(int(d) % rank for d in ([dims] if isinstance(dims, int) else dims))
    axes = sorted(t.ir_dim(fx, x, d) for d in torch_axes)
    b = t.batch_axis(x)
    batch = b if b is None or keepdim else b - sum(1 for a in torch_axes if a < b)
    sq = t.intermediate(fx, "mul", [t.tensor(x), t.tensor(x)], "square", shape=t.ir_shape(x))
    total = t.intermediate(fx, "sum", [sq], "sum", {"axes": axes, "keepdim": keepdim})
    t.emit(fx, "sqrt", [total], batch=batch)


def l2_normalized_axis(t: Tracer, x: torch.fx.Node, divisor: torch.fx.Node) -> int | None:
    """The IR axis when ``divisor`` is F.normalize's denominator of ``x``
    (expand(clamp_min(vector_norm(x, 2, [d], keepdim=True), eps))), else None."""
    node = divisor
    if node.target == aten.expand.default:
        node = node.args[0]
    if node.target in (aten.clamp.default, aten.clamp_min.default):
        if (node.args[2] if len(node.args) > 2 else node.kwargs.get("max")) is not None:
            return None
        node = node.args[0]
    if node.target != aten.linalg_vector_norm.default or node.args[0] is not x:
        return None
    order = float(node.args[1]) if len(node.args) > 1 else 2.0
    dims = node.args[2] if len(node.args) > 2 else None
    keepdim = bool(node.args[3]) if len(node.args) > 3 else False
    if order != 2.0 or not keepdim or dims is None or len(dims) != 1:
        return None
    return t.ir_dim(node, x, int(dims[0]))
