"""Handlers of shape and data-movement ops: reshape, squeeze/unsqueeze, permute, expand,
concatenation, padding (constant, reflect, replicate), slicing, selecting, splitting, gathers
with constant indices, embeddings, resizing, getitem, casts and the identities.

Every torch dimension goes through ``Tracer.ir_dim`` (the batch axis may have moved or been
squeezed, see ``Tracer``)."""
from __future__ import annotations

import operator

import numpy as np
import torch

from ..tracer import Tracer, aten, handles, op_name, unsupported


def _reshape_batch(t: Tracer, src: torch.fx.Node, out_shape: tuple[int, ...]) -> int | None:
    """Where a row-major reshape puts the batch axis: the size-1 output dimension with as many
    elements before it as the input's batch axis has. When several size-1 dimensions qualify
    (at batch 1 a reshape cannot tell them apart) the batch is taken as squeezed: every
    dimension is then an ordinary one, which is right whichever the model meant."""
    in_shape, b = t.shape(src), t.batch_axis(src)
    if b is None:
        return None
    before = int(np.prod(in_shape[:b]))
    candidates = [j for j, d in enumerate(out_shape) if d == 1 and int(np.prod(out_shape[:j])) == before]
    return candidates[0] if len(candidates) == 1 else None


@handles(aten.view.default, aten._unsafe_view.default, aten.reshape.default, aten.flatten.using_ints, whole=True)
def _reshape(t: Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    batch = _reshape_batch(t, src, t.shape(fx))
    rest = t.rest(t.shape(fx), batch)
    if rest == t.rest(t.shape(src), t.batch_axis(src)):
        t.alias(fx, src, batch)
        return
    t.emit(fx, "reshape", [t.tensor(src)], {"shape": list(rest)}, batch=batch)


@handles(aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, whole=True)
def _squeeze(t: Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    shape, b = t.shape(src), t.batch_axis(src)
    dims = fx.args[1] if len(fx.args) > 1 else [i for i, d in enumerate(shape) if d == 1]
    dims = {int(d) % len(shape) for d in ([dims] if isinstance(dims, int) else dims) if shape[int(d)] == 1}
    batch = None if b is None or b in dims else b - sum(1 for d in dims if d < b)
    _reshaped_to(t, fx, src, batch)


@handles(aten.unsqueeze.default)
def _unsqueeze(t: Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    d = int(fx.args[1]) % (len(t.shape(src)) + 1)
    b = t.batch_axis(src)
    _reshaped_to(t, fx, src, None if b is None else b + (d <= b))


def _reshaped_to(t: Tracer, fx: torch.fx.Node, src: torch.fx.Node, batch: int | None) -> None:
    rest = t.rest(t.shape(fx), batch)
    if rest == t.rest(t.shape(src), t.batch_axis(src)):
        t.alias(fx, src, batch)
    else:
        t.emit(fx, "reshape", [t.tensor(src)], {"shape": list(rest)}, batch=batch)


@handles(aten.permute.default)
def _permute(t: Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    rank = len(t.shape(src))
    perm = [int(p) % rank for p in fx.args[1]]
    b = t.batch_axis(src)
    batch = perm.index(b) if b is not None else None
    ir_perm = [0] + [t.ir_dim(fx, src, p) for i, p in enumerate(perm) if i != batch]
    ir_in = t.ir_shape(src)
    moved = [d for d in ir_perm if ir_in[d] != 1]
    if moved == sorted(moved):         # only size-1 axes move (the batch among them): a reshape
        _reshaped_to(t, fx, src, batch)
        return
    t.emit(fx, "transpose", [t.tensor(src)], {"perm": ir_perm}, batch=batch)


#: aten ops whose operands broadcast: an expand() feeding only them need not materialise
BROADCASTING_TARGETS = {aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor,
                        aten.maximum.default, aten.minimum.default, aten.where.self}


@handles(aten.expand.default)
def _expand(t: Tracer, fx: torch.fx.Node) -> None:
    """expand() of an activation that grows no dimension but the (size-1) batch or new leading
    ones: a reshape at most. Broadcasting to larger sizes is left to the elementwise op that
    consumes the tensor."""
    src = fx.args[0]
    out = t.shape(fx)
    offset = len(out) - len(t.shape(src))
    full = (1,) * offset + t.shape(src)
    if any(o != f for o, f in zip(out, full)):
        if all(u.target in BROADCASTING_TARGETS for u in fx.users):
            t.alias(fx, src)               # the consumer broadcasts it anyway
            t.shapes[fx.name] = t.shape(src)
            return
        raise unsupported(fx, f"expanding an activation from {t.shape(src)} to {out} (only broadcasting "
                              "inside an elementwise op is supported)")
    b = t.batch_axis(src)
    _reshaped_to(t, fx, src, None if b is None else b + offset)


@handles(operator.getitem)
def _getitem(t: Tracer, fx: torch.fx.Node) -> None:
    src, index = fx.args
    if src.name in t.tuples:
        name, batch = t.tuples[src.name][index]
        t.alias_tensor(fx, name, batch)
        return
    if src.name in t.splits:
        source, dim, offsets = t.splits[src.name]
        _emit_slice(t, fx, source, dim, offsets[index], offsets[index + 1], 1)
        return
    if index != 0:
        raise unsupported(fx, f"output {index} of {op_name(src)} (e.g. max-pool indices) is not supported")
    t.alias(fx, src)


@handles(aten.clone.default, aten.alias.default, aten.dropout.default, aten.detach.default,
         aten.lift_fresh_copy.default, aten.contiguous.default)
def _identity(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "identity", [t.tensor(fx.args[0])])


@handles(aten._to_copy.default)
def _to_copy(t: Tracer, fx: torch.fx.Node) -> None:
    """A copy; an integer (or boolean) activation made float, e.g. an attention mask, becomes
    a ``cast``: its values are small integers, exact in the quantized types."""
    src = fx.args[0]
    if fx.meta["val"].dtype.is_floating_point and t.graph.t(t.tensor(src)).dtype != "float32":
        t.emit(fx, "cast", [t.tensor(src)])
        return
    if not fx.meta["val"].dtype.is_floating_point:
        raise unsupported(fx, f"a cast of an activation to {fx.meta['val'].dtype}")
    t.emit(fx, "identity", [t.tensor(src)])


@handles(aten._assert_tensor_metadata.default)
def _assert_metadata(t: Tracer, fx: torch.fx.Node) -> None:
    """torch.export's dtype/shape assertions check the example inputs: nothing to compute."""


# -- concatenation, padding, slicing --------------------------------------------------------

@handles(aten.cat.default)
def _cat(t: Tracer, fx: torch.fx.Node) -> None:
    tensors = list(fx.args[0])
    dim = int(fx.args[1]) if len(fx.args) > 1 else int(fx.kwargs.get("dim", 0))
    acts = [a for a in tensors if t.is_activation(a)]
    batch = t.broadcast_batch(fx, acts)
    rank = len(t.shape(fx))
    dim %= rank
    if dim == batch:
        raise unsupported(fx, "concatenation along the batch dimension (it would mix samples)")
    axis = dim + 1 if batch is None or dim < batch else dim
    inputs = [_concat_operand(t, fx, a, batch) for a in tensors]
    t.emit(fx, "concat", inputs, {"axis": axis}, batch=batch)


def _concat_operand(t: Tracer, fx: torch.fx.Node, arg: torch.fx.Node, batch: int | None) -> str:
    """An input of a concatenation in the IR layout of the output (a constant: batch 1)."""
    if t.is_activation(arg):
        if t.batch_axis(arg) != batch:
            return t.reshaped(t.tensor(arg), (1, *t.rest(t.shape(arg), batch)), fx)
        return t.tensor(arg)
    data = t.const_array(arg)
    if batch is not None and data.shape[batch] != 1:
        raise unsupported(fx, f"a constant of shape {data.shape} concatenated along the batch dimension")
    return t.constant(f"{fx.name}_const", data.reshape((1, *t.rest(data.shape, batch))))


def _torch_pads(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, pad: list[int]) -> list[list[int]]:
    """torch's (before, after) pairs from the last dimension back -> IR per-dimension pairs."""
    rank = len(t.shape(x))
    pads = [[0, 0] for _ in range(len(t.ir_shape(x)))]
    for i in range(len(pad) // 2):
        before, after = int(pad[2 * i]), int(pad[2 * i + 1])
        if before or after:
            pads[t.ir_dim(fx, x, rank - 1 - i)] = [before, after]
    return pads


@handles(aten.constant_pad_nd.default)
def _pad(t: Tracer, fx: torch.fx.Node) -> None:
    x, pad = fx.args[0], [int(p) for p in fx.args[1]]
    value = float(fx.args[2]) if len(fx.args) > 2 else float(fx.kwargs.get("value", 0.0))
    pads = _torch_pads(t, fx, x, pad)
    if any(p < 0 for pr in pads for p in pr):
        raise unsupported(fx, "negative padding (cropping)")
    t.emit(fx, "pad", [t.tensor(x)], {"pads": pads, "value": value})


@handles(aten.reflection_pad1d.default, aten.reflection_pad2d.default,
         aten.replication_pad1d.default, aten.replication_pad2d.default)
def _mirror_pad(t: Tracer, fx: torch.fx.Node) -> None:
    """Reflect (mirror without the edge) and replicate (repeat the edge) padding."""
    x = fx.args[0]
    mode = "reflect" if "reflection" in str(fx.target) else "replicate"
    pads = _torch_pads(t, fx, x, [int(p) for p in fx.args[1]])
    shape = t.ir_shape(x)
    for (before, after), size in zip(pads, shape):
        if before < 0 or after < 0 or (mode == "reflect" and max(before, after) >= size):
            raise unsupported(fx, f"{mode} padding {before, after} of a dimension of size {size}")
    t.emit(fx, "pad", [t.tensor(x)], {"pads": pads, "value": 0.0, "mode": mode})


def _emit_slice(t: Tracer, fx: torch.fx.Node, src: torch.fx.Node, dim: int, start: int, end: int,
                step: int) -> None:
    shape = t.shape(src)
    dim %= len(shape)
    start, end, step = slice(start, end, step).indices(shape[dim])
    if step <= 0:
        raise unsupported(fx, "a slice with a non-positive step")
    if dim == t.batch_axis(src):              # the batch axis has size 1: a full slice or nothing
        if len(range(start, end, step)) != 1:
            raise unsupported(fx, "an empty slice of the batch dimension")
        t.alias(fx, src, t.batch_axis(src))
        return
    ir_shape = list(t.ir_shape(src))
    axis = t.ir_dim(fx, src, dim)
    begin, stop, strides = [0] * len(ir_shape), list(ir_shape), [1] * len(ir_shape)
    begin[axis], stop[axis], strides[axis] = start, max(end, start), step
    t.emit(fx, "slice", [t.tensor(src)], {"begin": begin, "end": stop, "strides": strides},
           batch=t.batch_axis(src))


@handles(aten.slice.Tensor)
def _slice(t: Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 5
    src, dim = args[0], int(args[1] if args[1] is not None else 0)
    start = int(args[2]) if args[2] is not None else 0
    end = int(args[3]) if args[3] is not None else 2 ** 62
    step = int(args[4]) if args[4] is not None else 1
    if start == 0 and end >= t.shape(src)[dim] and step == 1:
        t.alias(fx, src)
        return
    _emit_slice(t, fx, src, dim, start, min(end, 2 ** 62), step)


@handles(aten.select.int)
def _select(t: Tracer, fx: torch.fx.Node) -> None:
    """x[..., i, ...]: a slice of one, then the dimension dropped (selecting on the batch axis
    squeezes it)."""
    src, dim, index = fx.args[0], int(fx.args[1]), int(fx.args[2])
    shape, b = t.shape(src), t.batch_axis(src)
    dim %= len(shape)
    if dim == b:
        t.alias(fx, src, None)
        return
    index %= shape[dim]
    ir_shape = list(t.ir_shape(src))
    axis = t.ir_dim(fx, src, dim)
    begin, stop = [0] * len(ir_shape), list(ir_shape)
    begin[axis], stop[axis] = index, index + 1
    sliced = t.intermediate(fx, "slice", [t.tensor(src)], "slice",
                            {"begin": begin, "end": stop, "strides": [1] * len(ir_shape)},
                            shape=tuple(ir_shape[:axis] + [1] + ir_shape[axis + 1:]))
    batch = None if b is None else b - (dim < b)
    t.emit(fx, "reshape", [sliced], {"shape": list(t.rest(t.shape(fx), batch))}, batch=batch)


@handles(aten.split_with_sizes.default, aten.split.Tensor)
def _split(t: Tracer, fx: torch.fx.Node) -> None:
    """Recorded; each used piece becomes a slice at its getitem."""
    src, sizes = fx.args[0], fx.args[1]
    dim = int(fx.args[2]) if len(fx.args) > 2 else int(fx.kwargs.get("dim", 0))
    total = t.shape(src)[dim]
    if isinstance(sizes, int):
        sizes = [min(sizes, total - o) for o in range(0, total, sizes)]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    t.splits[fx.name] = (src, dim, [int(o) for o in offsets])


# -- gathers ----------------------------------------------------------------------------

@handles(aten.index.Tensor)
def _index(t: Tracer, fx: torch.fx.Node) -> None:
    """x[..., idx, ...] with one constant integer index tensor: a gather along that axis
    (reflect padding arrives like this)."""
    src, indices = fx.args
    used = [(d, i) for d, i in enumerate(indices) if i is not None]
    if len(used) != 1 or not t.is_const(used[0][1]):
        raise unsupported(fx, "indexing with several or computed index tensors")
    dim, idx = used[0]
    index = t.const_array(idx)
    if index.ndim != 1:
        raise unsupported(fx, "indexing with a multi-dimensional index tensor")
    size = t.shape(src)[dim]
    index = np.where(index < 0, index + size, index)
    t.emit(fx, "gather", [t.tensor(src), t.constant(f"{fx.name}_indices", index.astype(np.int64))],
           {"axis": t.ir_dim(fx, src, dim)})


@handles(aten.embedding.default)
def _embedding(t: Tracer, fx: torch.fx.Node) -> None:
    """A table lookup: rows of a constant table at integer ids (an activation)."""
    table, ids = fx.args[:2]
    if not t.is_const(table) or not t.is_activation(ids):
        raise unsupported(fx, "an embedding needs a constant table and computed ids")
    if t.graph.t(t.tensor(ids)).dtype == "float32":
        raise unsupported(fx, "embedding ids that are not integers")
    t.emit(fx, "embedding", [t.tensor(table), t.tensor(ids)], batch=t.batch_axis(ids))


# -- resizing -----------------------------------------------------------------------------

@handles(aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default)
def _upsample_nearest(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    xin = t.batch_first(fx, x)
    out = t.shape(fx)[2:]
    scales = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("scale_factors")
    if fx.target == aten.upsample_nearest2d.default:
        scales = [fx.args[2], fx.args[3]] if len(fx.args) > 3 and fx.args[2] is not None else None
    t.emit(fx, "resize_nearest", [xin],
           {"size": out, "scales": None if scales is None else [float(s) for s in scales]}, batch=0)


@handles(aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default)
def _upsample_bilinear(t: Tracer, fx: torch.fx.Node) -> None:
    """Bilinear resize. torch maps output pixels with 1/scale_factor when a scale factor is given
    and with in/out otherwise; TFLite's RESIZE_BILINEAR (the integer algorithm) always uses in/out,
    so a scale factor is accepted only where the two agree (e.g. integer factors)."""
    x = fx.args[0]
    xin = t.batch_first(fx, x)
    in_hw = t.shape(x)[2:]
    out = t.shape(fx)[2:]
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
    t.emit(fx, "resize_bilinear", [xin], {"size": out, "align_corners": align_corners}, batch=0)


