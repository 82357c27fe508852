"""TFLite lowerings of pooling, reductions, softmax and data movement: pools, RESHAPE, TRANSPOSE,
SOFTMAX / LOG_SOFTMAX, MEAN, ARG_MAX, CONCATENATION, PAD / PADV2, STRIDED_SLICE, resizes."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Node, QuantParams
from ...ops import get_op
from .builder import BO, Act, ModelBuilder, limits, padding_plan, per_tensor, requantized_input
from .registry import lowers
from .schema import fb


def _pool(b: ModelBuilder, node: Node, builtin: int) -> None:
    x = node.inputs[0]
    a = node.attrs
    xs, ys = b.g.t(x).shape, b.g.t(node.outputs[0]).shape
    kh, kw = (int(k) for k in a["kernel"])
    mode, explicit = padding_plan((xs[1], xs[2]), (kh, kw), tuple(a["stride"]), (1, 1),
                                  tuple(a["padding"]), (ys[1], ys[2]))
    if explicit and builtin == BO.AVERAGE_POOL_2D:
        raise UnsupportedOpError(
            f"avg_pool2d at {node.where()} has padding {tuple(a['padding'])} (ceil_mode="
            f"{a.get('ceil_mode', False)}) on a {xs[1]}x{xs[2]} input, which TFLite's SAME/VALID "
            "padding cannot express (TFLite averages over the valid part of SAME windows only)")
    dtype = b.g.t(x).dtype
    x_idx = b.pad(x, explicit, limits(dtype)[0]) if explicit else b.tensor(x)
    code, out, finish = b.output_with_activation(node)
    opts = fb.Pool2DOptionsT()
    opts.padding = mode
    opts.strideH, opts.strideW = (int(s) for s in a["stride"])
    opts.filterHeight, opts.filterWidth = kh, kw
    opts.fusedActivationFunction = code
    b.op(builtin, [x_idx], [out], fb.BuiltinOptions.Pool2DOptions, opts, version=3 if dtype == "int16" else 2)
    finish()


@lowers("max_pool2d")
def _max_pool(b: ModelBuilder, node: Node) -> None:
    _pool(b, node, BO.MAX_POOL_2D)


@lowers("avg_pool2d")
def _avg_pool(b: ModelBuilder, node: Node) -> None:
    _pool(b, node, BO.AVERAGE_POOL_2D)


@lowers("reshape")
def _reshape(b: ModelBuilder, node: Node) -> None:
    y = node.outputs[0]
    b.reshape(b.tensor(node.inputs[0]), b.tensor(y), b.g.t(y).shape)


@lowers("transpose")
def _transpose(b: ModelBuilder, node: Node) -> None:
    """TRANSPOSE. Past 5 dimensions (TFLite Micro's limit; attention reshapes make 6-D ones
    with unit dimensions) the unit dimensions are dropped by RESHAPEs around it: the same
    element order."""
    x, y = node.inputs[0], node.outputs[0]
    perm = [int(p) for p in node.attrs["perm"]]
    shape = b.g.t(x).shape
    if len(perm) <= 5:
        _transpose_op(b, b.tensor(x), b.tensor(y), perm)
        return
    kept = [d for d in range(len(perm)) if shape[d] != 1]
    inner = [kept.index(p) for p in perm if p in kept]
    if len(inner) > 5:
        raise UnsupportedOpError(f"transpose of {len(inner)} non-unit dimensions at {node.where()}: TFLite Micro's "
                                 "TRANSPOSE takes at most 5 (see `edgeq targets --ops`)")
    t = b.g.t(x)
    squeezed = b.add_tensor(f"{x}_unit_dims_dropped", tuple(shape[d] for d in kept), t.dtype, t.quant)
    b.reshape(b.tensor(x), squeezed, b.info[squeezed][0])
    if inner == sorted(inner):
        b.reshape(squeezed, b.tensor(y), b.g.t(y).shape)
        return
    moved = b.add_tensor(f"{y}_unit_dims_dropped", tuple(shape[kept[i]] for i in inner), t.dtype, t.quant)
    _transpose_op(b, squeezed, moved, inner)
    b.reshape(moved, b.tensor(y), b.g.t(y).shape)


def _transpose_op(b: ModelBuilder, src: int, dst: int, perm: list[int]) -> None:
    pt = b.const(f"{b.tensors[dst].name}_perm", np.asarray(perm, dtype=np.int32))
    version = 5 if b.info[src][1] == "int16" else 4 if len(perm) > 4 else 2
    b.op(BO.TRANSPOSE, [src, pt], [dst], fb.BuiltinOptions.TransposeOptions, fb.TransposeOptionsT(),
         version=version)


def on_last_axis(b: ModelBuilder, node: Node, emit: Callable[[int, int], None]) -> None:
    """``emit(src, dst)`` writes an op that works on the last axis (SOFTMAX, LOG_SOFTMAX); another
    axis is moved last by TRANSPOSE and back (the op is computed per row, so this is exact)."""
    x, y = node.inputs[0], node.outputs[0]
    shape = b.g.t(x).shape
    rank = len(shape)
    axis = node.attrs["axis"] % rank
    if axis == rank - 1:
        emit(b.tensor(x), b.tensor(y))
        return
    perm = [i for i in range(rank) if i != axis] + [axis]
    inv = [perm.index(i) for i in range(rank)]
    moved = tuple(shape[p] for p in perm)
    xt = b.add_tensor(f"{x}_axis_last", moved, b.g.t(x).dtype, b.g.t(x).quant)
    yt = b.add_tensor(f"{y}_axis_last", moved, b.g.t(y).dtype, b.g.t(y).quant)
    _transpose_op(b, b.tensor(x), xt, perm)
    emit(xt, yt)
    _transpose_op(b, yt, b.tensor(y), inv)


@lowers("softmax")
def _softmax(b: ModelBuilder, node: Node) -> None:
    opts = fb.SoftmaxOptionsT()
    opts.beta = float(node.attrs.get("beta", 1.0))
    on_last_axis(b, node, lambda src, dst: b.op(BO.SOFTMAX, [src], [dst], fb.BuiltinOptions.SoftmaxOptions,
                                                 opts, version=2))


@lowers("log_softmax")
def _log_softmax(b: ModelBuilder, node: Node) -> None:
    """LOG_SOFTMAX (int8: output 16/256, zero point 127, TFLite's fixed-point log-softmax)."""
    on_last_axis(b, node, lambda src, dst: b.op(BO.LOG_SOFTMAX, [src], [dst], fb.BuiltinOptions.LogSoftmaxOptions,
                                                 fb.LogSoftmaxOptionsT(), version=2))


@lowers("mean")
def _mean(b: ModelBuilder, node: Node) -> None:
    """MEAN (int8, or int16 in 16x8: QuantizedMeanOrSum; the IR's output quantization always
    differs from the input's, see ops/reduce.py)."""
    mean_into(b, node, b.tensor(node.outputs[0]))


@lowers("sum")
def _sum(b: ModelBuilder, node: Node) -> None:
    """MEAN into a tensor at the sum's ``mean_scale`` (s_out / n), relabelled to the sum's scale
    by a RESHAPE (same integers). TFLite's SUM is not used: LiteRT's reference SUM reads int8
    data as uint8 (ops/reduce.py)."""
    y = node.outputs[0]
    t = b.g.t(y)
    mean = b.add_tensor(f"{y}_as_mean", t.shape, t.dtype, QuantParams(np.float32(node.attrs["mean_scale"]),
                                                                        int(t.quant.zero_point[0])))
    mean_into(b, node, mean)
    b.reshape(mean, b.tensor(y), t.shape)


@lowers("reduce_max")
def _reduce_max(b: ModelBuilder, node: Node) -> None:
    """REDUCE_MAX (int8, input and output quantization equal)."""
    mean_into(b, node, b.tensor(node.outputs[0]), BO.REDUCE_MAX, "REDUCE_MAX")


def mean_into(b: ModelBuilder, node: Node, dst: int, code: int = BO.MEAN, what: str = "MEAN") -> None:
    """MEAN (or another reducer ``code``) of the node's input into tensor ``dst``. TFLite Micro
    resolves at most two reduced axes (a fixed-size array), so a reduction over more axes runs on
    a [kept..., reduced] view: TRANSPOSE (when the reduced axes are not last) and RESHAPE around
    a one-axis reduction (the same values reduced, so exact)."""
    x = node.inputs[0]
    xt = b.g.t(x)
    yshape, ydtype, yquant = b.info[dst]
    axes, rank = sorted(int(a) for a in node.attrs["axes"]), len(xt.shape)
    if rank > 5:
        raise UnsupportedOpError(f"{node.op} of a rank-{rank} tensor at {node.where()}: TFLite Micro's {what} "
                                 "takes at most 5 dimensions (see `edgeq targets --ops`)")
    version = 3 if xt.dtype == "int16" else 2

    def mean(src: int, out: int, ax: list[int], keep: bool) -> None:
        opts = fb.ReducerOptionsT()
        opts.keepDims = keep
        b.op(code, [src, b.const(f"{b.tensors[out].name}_axes", np.asarray(ax, dtype=np.int32))], [out],
             fb.BuiltinOptions.ReducerOptions, opts, version=version)

    if len(axes) <= 2:
        mean(b.tensor(x), dst, axes, bool(node.attrs["keepdim"]))
        return
    kept = [d for d in range(rank) if d not in axes]
    src = b.tensor(x)
    if kept + axes != list(range(rank)):
        moved = b.add_tensor(f"{x}_reduced_last", tuple(xt.shape[d] for d in kept + axes), xt.dtype, xt.quant)
        _transpose_op(b, src, moved, kept + axes)
        src = moved
    flat_shape = (*(xt.shape[d] for d in kept), int(np.prod([xt.shape[d] for d in axes])))
    flat = b.add_tensor(f"{x}_reduced_flat", flat_shape, xt.dtype, xt.quant)
    b.reshape(src, flat, flat_shape)
    kept_shape = tuple(xt.shape[d] for d in kept)
    if kept_shape == yshape:
        mean(flat, dst, [len(kept)], False)
        return
    out = b.add_tensor(f"{b.tensors[dst].name}_reduced", kept_shape, ydtype, yquant)
    mean(flat, out, [len(kept)], False)
    b.reshape(out, dst, yshape)


@lowers("argmax")
def _argmax(b: ModelBuilder, node: Node) -> None:
    """ARG_MAX with output_type int32 (first index on ties); keepdim adds a RESHAPE."""
    x, y = node.inputs[0], node.outputs[0]
    axis = int(node.attrs["axis"])
    opts = fb.ArgMaxOptionsT()
    opts.outputType = fb.TensorType.INT32
    dst = b.tensor(y)
    if node.attrs["keepdim"]:
        squeezed = tuple(d for i, d in enumerate(b.g.t(x).shape) if i != axis)
        dst = b.add_tensor(f"{y}_squeezed", squeezed, "int32")
    b.op(BO.ARG_MAX, [b.tensor(x), b.const(f"{y}_axis", np.array([axis], dtype=np.int32))], [dst],
         fb.BuiltinOptions.ArgMaxOptions, opts, version=2)
    if node.attrs["keepdim"]:
        b.reshape(dst, b.tensor(y), b.g.t(y).shape)


CONCAT_MAX_INPUTS = 10    # TFLite Micro's kMaxInputNum


@lowers("concat")
def _concat(b: ModelBuilder, node: Node) -> None:
    """CONCATENATION (inputs requantized to the output first); more than TFLite Micro's 10
    inputs (an unrolled RNN's outputs) are joined in groups of 10, then the groups."""
    ins = [requantized_input(b, node, k, p) for k, p in enumerate(node.attrs["requant"])]
    axis = int(node.attrs["axis"])
    y = b.tensor(node.outputs[0])
    level = 0
    while len(ins) > CONCAT_MAX_INPUTS:
        groups = [ins[i:i + CONCAT_MAX_INPUTS] for i in range(0, len(ins), CONCAT_MAX_INPUTS)]
        ins = [_concat_op(b, g, axis, level, k) if len(g) > 1 else g[0] for k, g in enumerate(groups)]
        level += 1
    _concat_op(b, ins, axis, dst=y)


def _concat_op(b: ModelBuilder, ins: list[int], axis: int, level: int = 0, k: int = 0, dst: int | None = None) -> int:
    if dst is None:
        shape = list(b.info[ins[0]][0])
        shape[axis] = sum(b.info[i][0][axis] for i in ins)
        _, dtype, quant = b.info[ins[0]]
        dst = b.add_tensor(f"{b.tensors[ins[0]].name}_concat_{level}_{k}", tuple(shape), dtype, quant)
    opts = fb.ConcatenationOptionsT()
    opts.axis = axis
    opts.fusedActivationFunction = Act.NONE
    b.op(BO.CONCATENATION, ins, [dst], fb.BuiltinOptions.ConcatenationOptions, opts, version=2)
    return dst


@lowers("pad")
def _pad_op(b: ModelBuilder, node: Node) -> None:
    """Constant padding: PAD (zero-point fill) or PADV2. Reflect: MIRROR_PAD REFLECT. Replicate:
    MIRROR_PAD SYMMETRIC when no side pads more than 1 (the mirrored edge is the edge), else one
    GATHER with constant indices per padded axis (int8 copies, exact)."""
    x, y = node.inputs[0], node.outputs[0]
    t = b.g.t(x)
    if len(t.shape) > 4:
        raise UnsupportedOpError(f"pad of a rank-{len(t.shape)} tensor at {node.where()}: TFLite Micro's "
                                 "PAD takes at most 4 dimensions (see `edgeq targets --ops`)")
    mode, pads = node.attrs.get("mode", "constant"), [tuple(p) for p in node.attrs["pads"]]
    paddings = b.const(f"{y}_paddings", np.asarray(pads, dtype=np.int32))
    if mode == "reflect" or (mode == "replicate" and max(max(p) for p in pads) <= 1):
        opts = fb.MirrorPadOptionsT()
        opts.mode = fb.MirrorPadMode.REFLECT if mode == "reflect" else fb.MirrorPadMode.SYMMETRIC
        b.op(BO.MIRROR_PAD, [b.tensor(x), paddings], [b.tensor(y)], fb.BuiltinOptions.MirrorPadOptions, opts,
             version=2)
        return
    if mode == "replicate":
        _replicate_by_gathers(b, node, pads)
        return
    value = node.attrs["pad_value"]
    if value == int(t.quant.zero_point[0]):
        b.op(BO.PAD, [b.tensor(x), paddings], [b.tensor(y)], fb.BuiltinOptions.PadOptions, fb.PadOptionsT(),
             version=2)
        return
    v = b.const(f"{y}_pad_value", np.array([value], dtype=np.int8), per_tensor(t.quant))
    b.op(BO.PADV2, [b.tensor(x), paddings, v], [b.tensor(y)], fb.BuiltinOptions.PadV2Options,
         fb.PadV2OptionsT(), version=2)


def _replicate_by_gathers(b: ModelBuilder, node: Node, pads: list[tuple[int, int]]) -> None:
    x, y = node.inputs[0], node.outputs[0]
    t = b.g.t(x)
    padded = [d for d, (lo, hi) in enumerate(pads) if lo or hi]
    src, shape = b.tensor(x), list(t.shape)
    for k, d in enumerate(padded):
        lo, hi = pads[d]
        index = np.clip(np.arange(-lo, shape[d] + hi), 0, shape[d] - 1)
        shape[d] += lo + hi
        dst = b.tensor(y) if k == len(padded) - 1 else b.add_tensor(f"{y}_replicated_{d}", tuple(shape), t.dtype, t.quant)
        b.gather(src, index, dst, d)
        src = dst


@lowers("gather")
def _gather(b: ModelBuilder, node: Node) -> None:
    """GATHER with the constant indices as int32 (int8 data: TFLite Micro has no int16 GATHER)."""
    b.gather(b.tensor(node.inputs[0]), b.g.t(node.inputs[1]).data.astype(np.int64), b.tensor(node.outputs[0]),
             int(node.attrs["axis"]))


@lowers("embedding")
def _embedding(b: ModelBuilder, node: Node) -> None:
    """Rows of the int8 table at the int32 ids, clamped to the table first (MAXIMUM, MINIMUM):
    TFLite Micro's GATHER does not check its indices."""
    table, ids = node.inputs
    vocabulary = b.g.t(table).shape[0]
    clamped = b.clamp_int32(b.tensor(ids), 0, vocabulary - 1, "in_table")
    b.gather(b.tensor(table), clamped, b.tensor(node.outputs[0]), 0)


@lowers("slice")
def _slice_op(b: ModelBuilder, node: Node) -> None:
    """STRIDED_SLICE; past 4 dimensions (TFLite Micro's limit) the unit dimensions of the input
    are dropped by RESHAPEs around it."""
    a, x, y = node.attrs, node.inputs[0], node.outputs[0]
    shape = b.g.t(x).shape
    dims = list(range(len(shape)))
    src, dst = b.tensor(x), b.tensor(y)
    if len(shape) > 4:
        dims = [d for d in dims if shape[d] != 1]
        if len(dims) > 4:
            raise UnsupportedOpError(f"slice of {len(dims)} non-unit dimensions at {node.where()}: TFLite Micro's "
                                     "STRIDED_SLICE takes at most 4 (see `edgeq targets --ops`)")
        t, ty = b.g.t(x), b.g.t(y)
        src = b.add_tensor(f"{x}_unit_dims_dropped", tuple(shape[d] for d in dims), t.dtype, t.quant)
        b.reshape(b.tensor(x), src, b.info[src][0])
        dst = b.add_tensor(f"{y}_unit_dims_dropped", tuple(ty.shape[d] for d in dims), ty.dtype, ty.quant)
    ins = [src] + [b.const(f"{y}_{k}", np.asarray([a[k][d] for d in dims], dtype=np.int32))
                   for k in ("begin", "end", "strides")]
    opts = fb.StridedSliceOptionsT()
    int8 = b.g.t(y).dtype == "int8"      # op_version.cc: 2 for int8, 1 for int16 (4 past 4 dimensions)
    b.op(BO.STRIDED_SLICE, ins, [dst], fb.BuiltinOptions.StridedSliceOptions, opts,
         version=4 if len(dims) > 4 else 2 if int8 else 1)
    if dst != b.tensor(y):
        b.reshape(dst, b.tensor(y), b.g.t(y).shape)


def tflite_nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR's source indices (align_corners and half_pixel_centers off)."""
    scale = np.float32(in_size) / np.float32(out_size)
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1)


@lowers("resize_nearest")
def _resize_nearest(b: ModelBuilder, node: Node) -> None:
    ih, iw = get_op("resize_nearest").indices(node, b.g)
    xs = b.g.t(node.inputs[0]).shape
    oh, ow = node.attrs["size"]
    if not (np.array_equal(ih, tflite_nearest_indices(xs[1], oh))
            and np.array_equal(iw, tflite_nearest_indices(xs[2], ow))):
        raise UnsupportedOpError(
            f"nearest resize at {node.where()} from {xs[1]}x{xs[2]} to {oh}x{ow}: torch's source pixels "
            "differ from TFLite RESIZE_NEAREST_NEIGHBOR's (use an integer scale factor or a size "
            "that is a multiple of the input; see `edgeq targets --ops`)")
    size = b.const(f"{node.outputs[0]}_size", np.array([oh, ow], dtype=np.int32))
    opts = fb.ResizeNearestNeighborOptionsT()
    opts.alignCorners = False
    opts.halfPixelCenters = False
    b.op(BO.RESIZE_NEAREST_NEIGHBOR, [b.tensor(node.inputs[0]), size], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.ResizeNearestNeighborOptions, opts, version=2)


@lowers("resize_bilinear")
def _resize_bilinear(b: ModelBuilder, node: Node) -> None:
    """RESIZE_BILINEAR (int8 reference: ResizeBilinearInteger, the IR's algorithm);
    align_corners=False is TFLite's half_pixel_centers (version 3), align_corners version 2."""
    oh, ow = node.attrs["size"]
    size = b.const(f"{node.outputs[0]}_size", np.array([oh, ow], dtype=np.int32))
    opts = fb.ResizeBilinearOptionsT()
    opts.alignCorners = bool(node.attrs["align_corners"])
    opts.halfPixelCenters = not opts.alignCorners
    b.op(BO.RESIZE_BILINEAR, [b.tensor(node.inputs[0]), size], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.ResizeBilinearOptions, opts, version=3 if opts.halfPixelCenters else 2)
