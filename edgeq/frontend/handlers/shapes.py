"""Handlers of shape and data-movement ops: reshape, permute, concatenation, padding, slicing,
splitting, resizing, getitem and the identities."""
from __future__ import annotations

import operator

import numpy as np
import torch

from ...ir import Node, Tensor
from ..tracer import Tracer, aten, handles, module_path, op_name, operand, rank_of, unsupported


@handles(aten.view.default, aten._unsafe_view.default, aten.reshape.default,
         aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.unsqueeze.default,
         aten.flatten.using_ints)
def _reshape(t: Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    in_shape = tuple(src.meta["val"].shape)
    out_shape = tuple(fx.meta["val"].shape)
    if not out_shape or out_shape[0] != in_shape[0]:
        raise unsupported(fx, f"reshape {in_shape} -> {out_shape} mixes the batch dimension with others")
    t.emit(fx, "reshape", [t.tensor(src)], {"shape": list(out_shape[1:])})


@handles(aten.permute.default)
def _permute(t: Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    perm = [int(p) % rank for p in fx.args[1]]
    if perm[0] != 0:
        raise unsupported(fx, f"permute {perm} moves the batch dimension")
    t.emit(fx, "transpose", [t.tensor(fx.args[0])], {"perm": perm})


@handles(operator.getitem)
def _getitem(t: Tracer, fx: torch.fx.Node) -> None:
    src, index = fx.args
    if src.name in t.splits:
        source, dim, offsets = t.splits[src.name]
        _emit_slice(t, fx, source, dim, offsets[index], offsets[index + 1], 1)
        return
    if index != 0:
        raise unsupported(fx, f"output {index} of {op_name(src)} (e.g. max-pool indices) is not supported")
    t.alias(fx, src)


@handles(aten.clone.default, aten.alias.default, aten.dropout.default, aten.detach.default,
         aten.lift_fresh_copy.default, aten._to_copy.default, aten.contiguous.default)
def _identity(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "identity", [t.tensor(fx.args[0])])


# -- shape and data movement ----------------------------------------------------------

@handles(aten.cat.default)
def _cat(t: Tracer, fx: torch.fx.Node) -> None:
    tensors = list(fx.args[0])
    dim = int(fx.args[1]) if len(fx.args) > 1 else int(fx.kwargs.get("dim", 0))
    rank = rank_of(fx)
    dim %= rank
    if dim == 0:
        raise unsupported(fx, "concatenation along the batch dimension")
    inputs = [operand(t, fx, a, rank) for a in tensors]
    t.emit(fx, "concat", inputs, {"axis": dim})


@handles(aten.constant_pad_nd.default)
def _pad(t: Tracer, fx: torch.fx.Node) -> None:
    x, pad = fx.args[0], [int(p) for p in fx.args[1]]
    value = float(fx.args[2]) if len(fx.args) > 2 else float(fx.kwargs.get("value", 0.0))
    rank = rank_of(x)
    pads = [[0, 0] for _ in range(rank)]
    for i in range(len(pad) // 2):      # torch lists (before, after) from the last dimension back
        pads[rank - 1 - i] = [pad[2 * i], pad[2 * i + 1]]
    if any(p < 0 for pr in pads for p in pr):
        raise unsupported(fx, "negative padding (cropping)")
    if pads[0] != [0, 0]:
        raise unsupported(fx, "padding the batch dimension")
    t.emit(fx, "pad", [t.tensor(x)], {"pads": pads, "value": value})


def _emit_slice(t: Tracer, fx: torch.fx.Node, src: torch.fx.Node, dim: int, start: int, end: int,
                step: int, out_name: str | None = None) -> None:
    shape = list(src.meta["val"].shape)
    rank = len(shape)
    dim %= rank
    if dim == 0:
        raise unsupported(fx, "slicing the batch dimension")
    start, end, step = slice(start, end, step).indices(shape[dim])
    if step <= 0:
        raise unsupported(fx, "a slice with a non-positive step")
    begin, stop, strides = [0] * rank, list(shape), [1] * rank
    begin[dim], stop[dim], strides[dim] = start, max(end, start), step
    attrs = {"begin": begin, "end": stop, "strides": strides}
    if out_name is None:
        t.emit(fx, "slice", [t.tensor(src)], attrs)
        return
    out_shape = tuple(len(range(b, e, s)) for b, e, s in zip(begin, stop, strides))
    t.graph.add_tensor(Tensor(out_name, out_shape, "float32"))
    t.graph.nodes.append(Node("slice", [t.tensor(src)], [out_name], attrs, out_name, module_path(fx)))


@handles(aten.slice.Tensor)
def _slice(t: Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 5
    src, dim = args[0], int(args[1] if args[1] is not None else 0)
    start = int(args[2]) if args[2] is not None else 0
    end = int(args[3]) if args[3] is not None else 2 ** 62
    step = int(args[4]) if args[4] is not None else 1
    if start == 0 and end >= src.meta["val"].shape[dim] and step == 1:
        t.emit(fx, "identity", [t.tensor(src)])
        return
    _emit_slice(t, fx, src, dim, start, min(end, 2 ** 62), step)


@handles(aten.select.int)
def _select(t: Tracer, fx: torch.fx.Node) -> None:
    src, dim, index = fx.args[0], int(fx.args[1]), int(fx.args[2])
    size = src.meta["val"].shape[dim]
    index %= size
    tmp = t.graph.unique_name(f"{fx.name}_slice")
    _emit_slice(t, fx, src, dim, index, index + 1, 1, tmp)
    t.emit(fx, "reshape", [tmp], {"shape": list(fx.meta["val"].shape[1:])})


@handles(aten.split_with_sizes.default, aten.split.Tensor)
def _split(t: Tracer, fx: torch.fx.Node) -> None:
    """Recorded; each used piece becomes a slice at its getitem."""
    src, sizes = fx.args[0], fx.args[1]
    dim = int(fx.args[2]) if len(fx.args) > 2 else int(fx.kwargs.get("dim", 0))
    total = src.meta["val"].shape[dim]
    if isinstance(sizes, int):
        sizes = [min(sizes, total - o) for o in range(0, total, sizes)]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    t.splits[fx.name] = (src, dim, [int(o) for o in offsets])


@handles(aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default)
def _upsample_nearest(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    out = tuple(fx.meta["val"].shape[2:])
    scales = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("scale_factors")
    if fx.target == aten.upsample_nearest2d.default:
        scales = [fx.args[2], fx.args[3]] if len(fx.args) > 3 and fx.args[2] is not None else None
    t.emit(fx, "resize_nearest", [t.tensor(x)],
           {"size": out, "scales": None if scales is None else [float(s) for s in scales]})


@handles(aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default)
def _upsample_bilinear(t: Tracer, fx: torch.fx.Node) -> None:
    """Bilinear resize. torch maps output pixels with 1/scale_factor when a scale factor is given
    and with in/out otherwise; TFLite's RESIZE_BILINEAR (the integer algorithm) always uses in/out,
    so a scale factor is accepted only where the two agree (e.g. integer factors)."""
    x = fx.args[0]
    in_hw = tuple(x.meta["val"].shape[2:])
    out = tuple(fx.meta["val"].shape[2:])
    align_corners = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("align_corners", False))
    if fx.target == aten.upsample_bilinear2d.vec:
        scales = fx.args[3] if len(fx.args) > 3 else fx.kwargs.get("scale_factors")
    else:
        scales = [fx.args[3], fx.args[4]] if len(fx.args) > 4 and fx.args[3] is not None else None
    if scales is not None and not align_corners:
        for s, i, o in zip(scales, in_hw, out):
            if s is not None and np.float32(1.0 / float(s)) != np.float32(i) / np.float32(o):
                raise unsupported(fx, f"bilinear resize {in_hw} -> {out} with scale factor {s}: torch samples "
                                       f"at 1/{s}, not at in/out = {i}/{o} as TFLite does; pass size=, or a "
                                       "scale factor equal to out/in")
    t.emit(fx, "resize_bilinear", [t.tensor(x)], {"size": out, "align_corners": align_corners})
