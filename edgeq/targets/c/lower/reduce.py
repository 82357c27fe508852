"""Lowerings of the reductions: max / average pooling, softmax, log_softmax, mean and sum (int8
and 16x8), maximum over axes, argmax, L2 normalization."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ..cformat import Field
from ..cheaders import max_dims
from ..layer import LayerCode
from ..strides import collapse_dims, padded, row_major_strides
from .registry import Kernel, kernel, lowers

#: the int16 average pool sums a window in int32: fewer taps than this cannot overflow
MAX_TAPS_S16 = 1 << 16


def _pool(layer: LayerCode, s8: Kernel, s16: Kernel) -> None:
    node, a = layer.node, layer.attrs
    _, ih, iw, c = layer.input(0).shape
    _, oh, ow, _ = layer.output.shape
    layer.note(f"{a['kernel'][0]}x{a['kernel'][1]} stride {a['stride'][0]}x{a['stride'][1]}")
    if layer.int16 and a["kernel"][0] * a["kernel"][1] >= MAX_TAPS_S16:
        raise UnsupportedOpError(f"{node.op} at {node.where()}: int16 pooling windows must have "
                                 f"fewer than {MAX_TAPS_S16} taps (int32 sum)")
    window = [("input_height", ih), ("input_width", iw), ("channels", c),
              ("output_height", oh), ("output_width", ow),
              ("kernel_height", a["kernel"][0]), ("kernel_width", a["kernel"][1]),
              ("stride_height", a["stride"][0]), ("stride_width", a["stride"][1]),
              ("pad_top", a["padding"][0]), ("pad_left", a["padding"][1])]
    layer.call(layer.kernel_for(s8, s16), [("window", window), ("act_min", a["act_min"]),
                                           ("act_max", a["act_max"])])


MAX_POOL = kernel("edgeq_max_pool2d_s8", "edgeq_max_pool2d.c")
MAX_POOL_S16 = kernel("edgeq_max_pool2d_s16", "edgeq_max_pool2d_s16.c")


@lowers("max_pool2d", kernels=(MAX_POOL,), int16=(MAX_POOL_S16,))
def _max_pool2d(layer: LayerCode) -> None:
    _pool(layer, MAX_POOL, MAX_POOL_S16)


AVG_POOL = kernel("edgeq_avg_pool2d_s8", "edgeq_avg_pool2d.c")
AVG_POOL_S16 = kernel("edgeq_avg_pool2d_s16", "edgeq_avg_pool2d_s16.c")


@lowers("avg_pool2d", kernels=(AVG_POOL,), int16=(AVG_POOL_S16,))
def _avg_pool2d(layer: LayerCode) -> None:
    _pool(layer, AVG_POOL, AVG_POOL_S16)


def axis_rows(layer: LayerCode, axis: int) -> list[Field]:
    """``outer``, ``depth``, ``inner`` of the input seen along ``axis`` (row-major)."""
    shape = layer.input(0).shape
    axis %= len(shape)
    return [("outer", int(np.prod(shape[:axis], dtype=np.int64))), ("depth", int(shape[axis])),
            ("inner", int(np.prod(shape[axis + 1:], dtype=np.int64)))]


def softmax_fields(layer: LayerCode) -> list[Field]:
    a = layer.attrs
    return [*axis_rows(layer, a["axis"]), ("input_multiplier", a["input_multiplier"]),
            ("input_left_shift", a["input_left_shift"]), ("diff_min", a["diff_min"])]


SOFTMAX = kernel("edgeq_softmax_s8", "edgeq_softmax.c")


@lowers("softmax", kernels=(SOFTMAX,))
def _softmax(layer: LayerCode) -> None:
    layer.call(SOFTMAX, softmax_fields(layer))


LOG_SOFTMAX = kernel("edgeq_log_softmax_s8", "edgeq_log_softmax.c")


@lowers("log_softmax", kernels=(LOG_SOFTMAX,))
def _log_softmax(layer: LayerCode) -> None:
    a = layer.attrs
    layer.note(f"axis {a['axis']}")
    layer.call(LOG_SOFTMAX, [*softmax_fields(layer), ("reverse_scaling_divisor", a["reverse_scaling_divisor"]),
                             ("reverse_scaling_left_shift", a["reverse_scaling_left_shift"])])


MEAN = kernel("edgeq_mean_s8", "edgeq_mean.c")
MEAN_S16 = kernel("edgeq_mean_s16", "edgeq_mean_s16.c")
#: the int16 mean sums in int32: fewer values than this cannot overflow
MAX_ELEMENTS_S16 = 1 << 16


def _reduction_geometry(layer: LayerCode) -> tuple[list[Field], int]:
    """The kept and the reduced dimensions of a reduction's input (shapes and element strides,
    adjacent dimensions merged), as the reduction kernels' ``axes`` member
    (``edgeq_reduce_axes``); and the reduced count."""
    node = layer.node
    shape = list(layer.input(0).shape)
    axes = sorted({int(v) % len(shape) for v in layer.attrs["axes"]})
    strides = row_major_strides(shape)
    kept = [d for d in range(len(shape)) if d not in axes]
    out_shape, (out_strides,) = collapse_dims([shape[d] for d in kept], [[strides[d] for d in kept]])
    red_shape, (red_strides,) = collapse_dims([shape[d] for d in axes], [[strides[d] for d in axes]])
    n = max_dims()
    if max(len(out_shape), len(red_shape)) > n:
        raise UnsupportedOpError(f"{node.op} over {len(shape)} dimensions at {node.where()}; the C kernel "
                                 f"takes at most {n} (see `edgeq targets --ops`)")
    layer.note(f"axes {axes}")
    return [("axes", [("output_dims", len(out_shape)), ("output_shape", padded(out_shape, n, 1)),
                      ("output_strides", padded(out_strides, n, 0)),
                      ("reduce_dims", len(red_shape)), ("reduce_shape", padded(red_shape, n, 1)),
                      ("reduce_strides", padded(red_strides, n, 0))])], int(np.prod(red_shape))


def _mean(layer: LayerCode) -> None:
    """TFLite MEAN (QuantizedMeanOrSum); a sum is the same kernel computing a mean at the scale
    s_out / n (``ops.reduce.Sum``), so both lower here."""
    node, a = layer.node, layer.attrs
    geometry, count = _reduction_geometry(layer)
    if count != int(a["num_elements"]):
        raise UnsupportedOpError(f"{node.op} at {node.where()}: {a['num_elements']} elements per mean, "
                                 f"its axes hold {count}")
    if layer.int16 and int(a["num_elements"]) >= MAX_ELEMENTS_S16:
        raise UnsupportedOpError(f"{node.op} at {node.where()}: an int16 mean of {a['num_elements']} values; "
                                 f"the C kernel sums fewer than {MAX_ELEMENTS_S16} (int32)")
    if node.op == "sum":
        layer.note("a sum: the mean at scale s_out / n")
    layer.call(layer.kernel_for(MEAN, MEAN_S16), [
        *geometry, ("num_elements", a["num_elements"]), ("input_offset", -int(a["input_zero_point"])),
        ("multiplier", a["multiplier"]), ("shift", a["shift"]), ("output_offset", a["output_zero_point"])])


lowers("mean", kernels=(MEAN,), int16=(MEAN_S16,))(_mean)
lowers("sum", kernels=(MEAN,), int16=(MEAN_S16,))(_mean)


REDUCE_MAX = kernel("edgeq_reduce_max_s8", "edgeq_reduce_max.c")


@lowers("reduce_max", kernels=(REDUCE_MAX,))
def _reduce_max(layer: LayerCode) -> None:
    """The largest int8 value over the axes (TFLite REDUCE_MAX; no requantization)."""
    geometry, _ = _reduction_geometry(layer)
    layer.call(REDUCE_MAX, geometry)


ARGMAX = kernel("edgeq_argmax_s8", "edgeq_argmax.c")


@lowers("argmax", kernels=(ARGMAX,))
def _argmax(layer: LayerCode) -> None:
    layer.note(f"axis {layer.attrs['axis']}; int32 indices, 4 little-endian bytes each")
    layer.call(ARGMAX, axis_rows(layer, layer.attrs["axis"]))


L2_NORMALIZE = kernel("edgeq_l2_normalize_s8", "edgeq_l2_normalize.c")


@lowers("l2_normalize", kernels=(L2_NORMALIZE,))
def _l2_normalize(layer: LayerCode) -> None:
    axis = int(layer.attrs["axis"]) % len(layer.input(0).shape)
    layer.note(f"axis {axis}; output scale 1/128, zero point 0")
    layer.call(L2_NORMALIZE, [*axis_rows(layer, axis), ("input_offset", -int(layer.attrs["input_zero_point"]))])
