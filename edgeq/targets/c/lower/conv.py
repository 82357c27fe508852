"""Lowerings of the weighted ops: conv2d, depthwise_conv2d, conv_transpose2d, linear."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ..cformat import Field, shape_text
from ..layer import LayerCode
from .registry import kernel, lowers

#: TFLite's 16x8 requantization takes shifts up to 14 (a Q15 multiplier, then 15 - shift)
MAX_SHIFT_16X8 = 14


def check_precision(layer: LayerCode) -> None:
    """An int8 layer (int32 bias) or a 16x8 one (int16 activations, zero points 0, int64 bias)."""
    node = layer.node
    x, b, y = layer.input(0), layer.input(2), layer.output
    if x.dtype == "int8" and y.dtype == "int8":
        if b.dtype != "int32":
            raise UnsupportedOpError(f"{node.op} at {node.where()}: int8 layer with a {b.dtype} bias")
        return
    a = node.attrs
    if x.dtype != "int16" or y.dtype != "int16" or b.dtype != "int64":
        raise UnsupportedOpError(f"{node.op} at {node.where()}: {x.dtype} input, {y.dtype} output and "
                                 f"{b.dtype} bias; the C target runs int8 layers and 16x8 layers "
                                 f"(int16 input and output, int64 bias)")
    if int(a["input_zero_point"]) != 0 or int(a["output_zero_point"]) != 0:
        raise UnsupportedOpError(f"{node.op} at {node.where()}: 16x8 layers need zero points 0")
    if int(np.max(np.asarray(a["shift"]))) > MAX_SHIFT_16X8:
        raise UnsupportedOpError(f"{node.op} at {node.where()}: 16x8 requantization shift above {MAX_SHIFT_16X8}")


def weights_array(layer: LayerCode, what: str) -> str:
    """``what``: the comment of the array, before the shape (e.g. "int8 weights, OHWI")."""
    w = layer.input(1)
    return layer.const_array("weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                             f"{what} {shape_text(w.shape)}")


def bias_array(layer: LayerCode) -> str:
    b = layer.input(2)
    if b.dtype == "int64":
        return layer.const_array("bias", "int64_t", b.data.astype(np.int64), b.name, 4,
                                 "int64 biases of a 16x8 layer (scale input_scale * weight_scale[channel])")
    return layer.const_array("bias", "int32_t", b.data.astype(np.int64), b.name, 6,
                             "int32 biases (scale input_scale * weight_scale[channel])")


def channel_requant(layer: LayerCode, out_channels: int) -> list[Field]:
    """``edgeq_channel_requant`` fields: multiplier and shift arrays (per-tensor numbers repeated
    per channel) and the fused activation's clamp."""
    node, a = layer.node, layer.attrs
    mult = np.asarray(a["multiplier"], dtype=np.int64).reshape(-1)
    shift = np.asarray(a["shift"], dtype=np.int64).reshape(-1)
    if mult.size == 1 and out_channels > 1:
        mult = np.repeat(mult, out_channels)
        shift = np.repeat(shift, out_channels)
    if mult.size != out_channels:
        raise UnsupportedOpError(f"{node.where()}: {mult.size} multipliers for {out_channels} output channels")
    if shift.min(initial=0) < -128 or shift.max(initial=0) > 127:
        raise UnsupportedOpError(f"{node.where()}: shift out of int8 range")
    m = layer.const_array("multiplier", "int32_t", mult, node.name, 6,
                          "Q31 requantization multipliers, one per output channel")
    s = layer.const_array("shift", "int8_t", shift, node.name, 16,
                          "power-of-two exponents, one per output channel")
    return [("multiplier", m), ("shift", s), ("act_min", a["act_min"]), ("act_max", a["act_max"])]


def zero_point_offsets(layer: LayerCode) -> list[Field]:
    """Input and output zero points of an int8 layer (16x8 layers have none)."""
    if layer.int16:
        return []
    a = layer.attrs
    return [("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"])]


def conv_geometry(layer: LayerCode) -> list[Field]:
    """``edgeq_conv_geometry`` fields of a conv-like layer (NHWC input and output)."""
    a = layer.attrs
    _, ih, iw, ic = layer.input(0).shape
    _, oh, ow, _ = layer.output.shape
    w = layer.input(1).shape
    return [("input_height", ih), ("input_width", iw), ("input_channels", ic),
            ("output_height", oh), ("output_width", ow),
            ("kernel_height", w[1]), ("kernel_width", w[2]),
            ("stride_height", a["stride"][0]), ("stride_width", a["stride"][1]),
            ("dilation_height", a["dilation"][0]), ("dilation_width", a["dilation"][1]),
            ("pad_top", a["padding"][0]), ("pad_left", a["padding"][1])]


def window_note(layer: LayerCode, groups: bool = True) -> str:
    """``3x3 stride 1x1`` (and the groups of a grouped convolution)."""
    w, a = layer.input(1).shape, layer.attrs
    groups = f", {a['groups']} groups" if groups and a["groups"] > 1 else ""
    return f"{w[1]}x{w[2]} stride {a['stride'][0]}x{a['stride'][1]}{groups}"


def weighted_fields(layer: LayerCode, weights_note: str, shape: list[Field]) -> list[Field]:
    """Arrays and shapes of a conv / linear layer: ``shape`` fields, then zero points,
    weights, bias and per-channel requantization."""
    weights = weights_array(layer, weights_note)
    bias = bias_array(layer)
    requant = channel_requant(layer, layer.output.shape[-1])
    return [*shape, *zero_point_offsets(layer), ("weights", weights), ("bias", bias), ("requant", requant)]


CONV2D = kernel("edgeq_conv2d_s8", "edgeq_conv2d.c")
CONV2D_S16 = kernel("edgeq_conv2d_s16", "edgeq_conv2d_s16.c")


@lowers("conv2d", kernels=(CONV2D,), int16=(CONV2D_S16,))
def _conv2d(layer: LayerCode) -> None:
    check_precision(layer)
    fields = weighted_fields(layer, "int8 weights, OHWI", [("geometry", conv_geometry(layer)),
                                                           ("output_channels", layer.output.shape[-1]),
                                                           ("groups", layer.attrs["groups"])])
    layer.note(window_note(layer))
    layer.call(layer.kernel_for(CONV2D, CONV2D_S16), fields)


DEPTHWISE = kernel("edgeq_depthwise_conv2d_s8", "edgeq_depthwise_conv2d.c")
DEPTHWISE_S16 = kernel("edgeq_depthwise_conv2d_s16", "edgeq_depthwise_conv2d_s16.c")


@lowers("depthwise_conv2d", kernels=(DEPTHWISE,), int16=(DEPTHWISE_S16,))
def _depthwise_conv2d(layer: LayerCode) -> None:
    check_precision(layer)
    multiplier = layer.output.shape[-1] // layer.input(0).shape[-1]
    fields = weighted_fields(layer, "int8 weights, 1HWO", [("geometry", conv_geometry(layer)),
                                                           ("depth_multiplier", multiplier)])
    layer.note(window_note(layer, groups=False))
    layer.call(layer.kernel_for(DEPTHWISE, DEPTHWISE_S16), fields)


CONV_TRANSPOSE = kernel("edgeq_conv_transpose2d_s8", "edgeq_conv_transpose2d.c")


@lowers("conv_transpose2d", kernels=(CONV_TRANSPOSE,))
def _conv_transpose2d(layer: LayerCode) -> None:
    node, a = layer.node, layer.attrs
    w, ic, oc = layer.input(1), layer.input(0).shape[-1], layer.output.shape[-1]
    if w.shape[0] != oc or w.shape[3] * a["groups"] != ic:
        raise UnsupportedOpError(f"conv_transpose2d at {node.where()}: filters {shape_text(w.shape)} are not "
                                 f"OHWI for {ic} input and {oc} output channels in {a['groups']} groups")
    fields = weighted_fields(layer, "int8 filters, OHWI", [("geometry", conv_geometry(layer)),
                                                           ("output_channels", oc), ("groups", a["groups"])])
    layer.note(window_note(layer))
    layer.call(CONV_TRANSPOSE, fields)


FULLY_CONNECTED = kernel("edgeq_fully_connected_s8", "edgeq_fully_connected.c")
FULLY_CONNECTED_S16 = kernel("edgeq_fully_connected_s16", "edgeq_fully_connected_s16.c")


@lowers("linear", kernels=(FULLY_CONNECTED,), int16=(FULLY_CONNECTED_S16,))
def _linear(layer: LayerCode) -> None:
    check_precision(layer)
    out_f, in_f = layer.input(1).shape
    shape = [("rows", layer.input(0).size // in_f), ("input_features", in_f), ("output_features", out_f)]
    fields = weighted_fields(layer, "int8 weights [out][in]", [("shape", shape)])
    layer.call(layer.kernel_for(FULLY_CONNECTED, FULLY_CONNECTED_S16), fields)
