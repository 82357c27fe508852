"""Lowerings of the ops that move data: reshape, transpose, concat, pad, slice, the two
resizes, and ``requantize`` (the int8 <-> int16 change of type of mixed precision)."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ....ops import get_op
from ....ops.data_movement import bilinear_source
from ..cformat import Field
from ..cheaders import max_dims
from ..layer import LayerCode
from ..strides import collapse_dims, padded, row_major_strides
from .elementwise import rescale_fields
from .registry import kernel, lowers

#: byte copy: also copies graph outputs stored elsewhere (emit), int16 tensors as bytes
COPY = kernel("edgeq_copy_s8", "edgeq_copy.c")

#: the resize kernels' int16 source indices and fractions
INT16_LIMIT = 1 << 15


def check_dims(layer: LayerCode, dims: int, what: str) -> None:
    if dims > max_dims():
        raise UnsupportedOpError(f"{what} of {dims} dimensions at {layer.node.where()}; the C "
                                 f"kernel takes at most {max_dims()} (see `edgeq targets --ops`)")


@lowers("reshape", kernels=(COPY,), int16=(COPY,), int32_inputs=True)
def _reshape(layer: LayerCode) -> None:
    node = layer.node
    src, dst = node.inputs[0], node.outputs[0]
    if node.name in layer.model.plan.alias_nodes:
        layer.comment += f"\nno code: {dst} shares the memory of {src} ({layer.model.where(src)})"
        return
    layer.call(COPY, args=[layer.ptr(src), layer.ptr(dst), str(layer.model.nbytes(dst))])


TRANSPOSE = kernel("edgeq_transpose_s8", "edgeq_transpose.c")
TRANSPOSE_S16 = kernel("edgeq_transpose_s16", "edgeq_transpose_s16.c")


@lowers("transpose", kernels=(TRANSPOSE,), int16=(TRANSPOSE_S16,))
def _transpose(layer: LayerCode) -> None:
    perm = list(layer.attrs["perm"])
    shape = layer.input(0).shape
    in_strides = row_major_strides(shape)
    out_shape, (strides,) = collapse_dims([shape[p] for p in perm], [[in_strides[p] for p in perm]])
    check_dims(layer, len(out_shape), "transpose")
    layer.note(f"perm {perm}")
    n = max_dims()
    layer.call(layer.kernel_for(TRANSPOSE, TRANSPOSE_S16), [
        ("dims", len(out_shape)), ("output_shape", padded(out_shape, n, 1)),
        ("input_strides", padded(strides, n, 0))])


CONCAT = kernel("edgeq_concat_s8", "edgeq_concat.c")


@lowers("concat", kernels=(CONCAT,))
def _concat(layer: LayerCode) -> None:
    node, graph = layer.node, layer.graph
    so = layer.output.shape
    axis = int(node.attrs["axis"]) % len(so)
    outer = int(np.prod(so[:axis], dtype=np.int64))
    inner = int(np.prod(so[axis + 1:], dtype=np.int64))
    layer.note(f"axis {axis}")
    out = layer.ptr(node.outputs[0])
    start = 0
    for i, (name, requant) in enumerate(zip(node.inputs, node.attrs["requant"])):
        row = graph.t(name).shape[axis] * inner
        fields: list[Field] = [("outer", outer), ("input_row", row), ("output_row", so[axis] * inner),
                               ("output_start", start), ("rescale", rescale_fields(requant))]
        layer.call(CONCAT, fields, [layer.operand(i), out], suffix=f"_input{i}")
        start += row


PAD = kernel("edgeq_pad_s8", "edgeq_pad.c")


@lowers("pad", kernels=(PAD,))
def _pad(layer: LayerCode) -> None:
    node = layer.node
    si, so = list(layer.input(0).shape), list(layer.output.shape)
    pads = [tuple(int(v) for v in p) for p in node.attrs["pads"]]
    out_strides = row_major_strides(so)
    start = sum(b * st for (b, _), st in zip(pads, out_strides))
    shape, (strides,) = collapse_dims(si, [out_strides])
    check_dims(layer, len(shape), "pad")
    layer.note(f"pads {[list(p) for p in pads]}")
    n = max_dims()
    layer.call(PAD, [
        ("dims", len(shape)), ("input_shape", padded(shape, n, 1)), ("output_strides", padded(strides, n, 0)),
        ("output_start", start), ("output_size", int(np.prod(so, dtype=np.int64))),
        ("pad_value", node.attrs["pad_value"])])


SLICE = kernel("edgeq_slice_s8", "edgeq_slice.c")
SLICE_S16 = kernel("edgeq_slice_s16", "edgeq_slice_s16.c")


@lowers("slice", kernels=(SLICE,), int16=(SLICE_S16,))
def _slice(layer: LayerCode) -> None:
    a = layer.attrs
    si, so = list(layer.input(0).shape), list(layer.output.shape)
    in_strides = row_major_strides(si)
    start = sum(int(b) * st for b, st in zip(a["begin"][1:], in_strides[1:]))
    steps = [st * int(k) for st, k in zip(in_strides, a["strides"])]
    shape, (strides,) = collapse_dims(so, [steps])
    check_dims(layer, len(shape), "slice")
    layer.note(f"begin {list(a['begin'][1:])} end {list(a['end'][1:])} step {list(a['strides'][1:])}")
    n = max_dims()
    layer.call(layer.kernel_for(SLICE, SLICE_S16), [
        ("dims", len(shape)), ("output_shape", padded(shape, n, 1)),
        ("input_strides", padded(strides, n, 0)), ("input_start", start)])


def resize_sizes(layer: LayerCode) -> tuple[int, int, int, int]:
    """(input height, input width, output height, output width) of an NHWC resize."""
    _, ih, iw, _ = layer.input(0).shape
    _, oh, ow, _ = layer.output.shape
    return ih, iw, oh, ow


def resize_fields(layer: LayerCode) -> list[Field]:
    """The sizes both resize kernels take; notes them in the layer's comment."""
    ih, iw, oh, ow = resize_sizes(layer)
    layer.note(f"{ih}x{iw} -> {oh}x{ow}")
    return [("input_width", iw), ("channels", layer.input(0).shape[3]), ("output_height", oh),
            ("output_width", ow)]


RESIZE_NEAREST = kernel("edgeq_resize_nearest_s8", "edgeq_resize_nearest.c")


@lowers("resize_nearest", kernels=(RESIZE_NEAREST,))
def _resize_nearest(layer: LayerCode) -> None:
    node = layer.node
    ih, iw, oh, ow = resize_sizes(layer)
    rows, cols = get_op(node.op).indices(node, layer.graph)
    if rows.size != oh or cols.size != ow or rows.min() < 0 or rows.max() >= min(ih, INT16_LIMIT) \
            or cols.min() < 0 or cols.max() >= min(iw, INT16_LIMIT):
        raise UnsupportedOpError(f"resize_nearest at {node.where()}: source indices out of range")
    rsym = layer.const_array("rows", "int16_t", rows, node.name, 16, f"source row of each of the {oh} output rows")
    csym = layer.const_array("cols", "int16_t", cols, node.name, 16,
                             f"source column of each of the {ow} output columns")
    layer.call(RESIZE_NEAREST, [*resize_fields(layer), ("rows", rsym), ("cols", csym)])


RESIZE_BILINEAR = kernel("edgeq_resize_bilinear_s8", "edgeq_resize_bilinear.c")


@lowers("resize_bilinear", kernels=(RESIZE_BILINEAR,))
def _resize_bilinear(layer: LayerCode) -> None:
    node = layer.node
    ih, iw, oh, ow = resize_sizes(layer)
    align_corners = bool(node.attrs["align_corners"])
    arrays: list[Field] = []
    for axis, size, out in (("row", ih, oh), ("col", iw, ow)):
        lower, upper, frac = bilinear_source(size, out, align_corners)
        if (lower.size != out or lower.min() < 0 or upper.max() >= size or size >= INT16_LIMIT
                or frac.min() < -INT16_LIMIT or frac.max() >= INT16_LIMIT):
            raise UnsupportedOpError(f"resize_bilinear at {node.where()}: source positions out of range")
        what = "row" if axis == "row" else "column"
        for part, values, note in (("lower", lower, f"lower source {what}"),
                                   ("upper", upper, f"upper source {what}"),
                                   ("fraction", frac, f"position above the lower {what}, 1/1024")):
            sym = layer.const_array(f"{axis}_{part}", "int16_t", values, node.name, 16,
                                    f"{note} of each of the {out} output {what}s")
            arrays.append((f"{axis}_{part}", sym))
    fields = resize_fields(layer)
    layer.note("align_corners" if align_corners else "half-pixel")
    layer.call(RESIZE_BILINEAR, fields + arrays)


REQUANTIZE_S8_S16 = kernel("edgeq_requantize_s8_s16", "edgeq_requantize.c")
REQUANTIZE_S16_S8 = kernel("edgeq_requantize_s16_s8", "edgeq_requantize.c")


@lowers("requantize", int16=(REQUANTIZE_S8_S16, REQUANTIZE_S16_S8))
def _requantize(layer: LayerCode) -> None:
    node, a = layer.node, layer.attrs
    src, dst = layer.input(0), layer.output
    kernels = {("int8", "int16"): REQUANTIZE_S8_S16, ("int16", "int8"): REQUANTIZE_S16_S8}
    if (src.dtype, dst.dtype) not in kernels:
        raise UnsupportedOpError(f"requantize at {node.where()}: {src.dtype} -> {dst.dtype}; the C target "
                                 f"converts int8 <-> int16 only")
    layer.note(f"{src.dtype} -> {dst.dtype}")
    layer.call(kernels[(src.dtype, dst.dtype)], [
        ("size", dst.size), ("input_offset", -int(a["input_zero_point"])),
        ("multiplier", a["multiplier"]), ("shift", a["shift"]), ("output_offset", a["output_zero_point"])])
