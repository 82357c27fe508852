"""Lowerings of the weighted ops: conv2d, depthwise_conv2d, conv_transpose2d, linear."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ....ir import Graph, Node
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


# ------------------------------------------------------------------ matrix-product kernels

INT32_LIMIT = 1 << 31
#: edgeq_requantize_fast() needs |acc| < 2^30 and right shifts in [1, 21] (edgeq_support.h)
FAST_ACC_LIMIT = 1 << 30
FAST_SHIFTS = (-21, -1)


def matmul_weights(w: np.ndarray) -> np.ndarray:
    """(O, K) int8 weights packed as edgeq_matmul.h reads them: channel pairs (an odd last
    channel paired with zeros), for each pair groups of 4 depths, channel 2j's 4 then 2j+1's."""
    o, k = w.shape
    k4, o2 = (k + 3) // 4 * 4, o + (o % 2)
    full = np.zeros((o2, k4), dtype=np.int64)
    full[:o, :k] = w
    return full.reshape(o2 // 2, 2, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(-1)


def matmul_bounds(w: np.ndarray, bias: np.ndarray, input_zero_point: int) -> tuple[np.ndarray, np.ndarray]:
    """Per channel: the largest |partial sum| the kernels can meet (the folded bias plus any
    subset of products with inputs in [-128, 127]), and the largest |accumulator| (bias plus
    sum w * (x - zero point)), in exact integers."""
    wabs = np.abs(w.astype(np.int64)).sum(axis=1)
    b = np.abs(bias.astype(np.int64))
    zp = int(input_zero_point)
    partial = b + (abs(zp) + 128) * wabs
    final = b + max(127 - zp, zp + 128) * wabs
    return partial, final


def foldable(node: Node, graph: Graph) -> bool:
    """Can the input offset be folded into the biases with every partial sum inside int32?"""
    w, b = graph.t(node.inputs[1]), graph.t(node.inputs[2])
    if w.data is None or b.data is None or b.dtype != "int32":
        return False
    w2 = _weights_2d(node, graph)
    partial, _ = matmul_bounds(w2, b.data.reshape(-1), int(node.attrs["input_zero_point"]))
    return bool(partial.max(initial=0) < INT32_LIMIT)


def _weights_2d(node: Node, graph: Graph) -> np.ndarray:
    """The weights as (output channel, the taps summed into it): OHWI / [out][in] rows, or the
    columns of a depthwise layer's 1HWO."""
    w = graph.t(node.inputs[1]).data.astype(np.int64)
    if node.op == "depthwise_conv2d":
        return w.reshape(-1, w.shape[-1]).T
    return w.reshape(w.shape[0], -1)


def fast_requant(node: Node, graph: Graph) -> bool:
    """Is edgeq_requantize_fast() exact for every accumulator the (foldable) layer can produce?"""
    w2 = _weights_2d(node, graph)
    bias = graph.t(node.inputs[2]).data.astype(np.int64).reshape(-1)
    _, final = matmul_bounds(w2, bias, int(node.attrs["input_zero_point"]))
    shift = np.asarray(node.attrs["shift"], dtype=np.int64).reshape(-1)
    return bool(final.max(initial=0) < FAST_ACC_LIMIT and shift.min() >= FAST_SHIFTS[0]
                and shift.max() <= FAST_SHIFTS[1])


def folded_output_stage(layer: LayerCode) -> tuple[str, bool]:
    """The biases with the input offset folded in (their array's symbol), and whether
    edgeq_requantize_fast() is exact for every accumulator the layer can produce."""
    a = layer.attrs
    w2 = _weights_2d(layer.node, layer.graph)
    bias = layer.input(2).data.astype(np.int64).reshape(-1)
    zp = int(a["input_zero_point"])
    fast = fast_requant(layer.node, layer.graph)
    folded_bias = layer.const_array("folded_bias", "int32_t", bias - zp * w2.sum(axis=1), layer.node.inputs[2], 6,
                                    f"int32 biases + input_offset ({-zp}) * the sum of each channel's weights")
    return folded_bias, fast


def matmul_fields(layer: LayerCode, weights_note: str) -> list[Field]:
    """``edgeq_matmul_s8`` fields: packed weights, the input offset folded into the biases,
    per-channel requantization, and whether edgeq_requantize_fast() is exact for the layer."""
    w2 = _weights_2d(layer.node, layer.graph)
    o, k = w2.shape
    weights = layer.const_array("packed_weights", "int8_t", matmul_weights(w2), layer.node.inputs[1], 16,
                                f"{weights_note} {shape_text(layer.input(1).shape)}, packed for edgeq_matmul_s8 "
                                f"(channel pairs, groups of 4 of the {k} depths)", aligned=True)
    folded_bias, fast = folded_output_stage(layer)
    return [("channels", o), ("depth", k), ("weights", weights), ("bias", folded_bias),
            ("requant", channel_requant(layer, o)), ("output_offset", layer.attrs["output_zero_point"]),
            ("fast_requant", int(fast))]


def column_bytes(depth: int, columns: int) -> int:
    """edgeq_matmul_column_bytes() on the DSP path (the portable path needs at most as much)."""
    return (depth + 3) // 4 * 4 * columns * 2


#: The one-channel kernel up to this many output channels.  Measured on the Cortex-M4: 8
#: channels (micro_speech's 10x8 stem, person_detect's and lenet's 3x3 ones) run 1.5-1.7x
#: faster than im2col; ds_cnn's 10x4 stem with 64 channels 15% slower, as im2col's gather is
#: then shared by many channels and its 2x2 blocking shares each weight load by two pixels.
C1_MAX_CHANNELS = 16


def conv_kind(node: Node, graph: Graph) -> str:
    """The kernel a conv2d layer calls: "s16", "generic" (grouped, an offset that cannot be
    folded, or edgeq_requantize_fast() not exact: the general kernel has the exact output stage),
    "c1" (one input channel, no dilation, few output channels), "1x1" (pointwise, stride 1, no
    padding) or "im2col".  The c1, 1x1 and im2col kernels have only the fast output stage (no
    zoo layer needs the exact one; it was 284 bytes of flash in every model with a matmul)."""
    if graph.t(node.inputs[0]).dtype != "int8":
        return "s16"
    a = node.attrs
    if a["groups"] != 1 or not foldable(node, graph) or not fast_requant(node, graph):
        return "generic"
    if (graph.t(node.inputs[0]).shape[-1] == 1 and tuple(a["dilation"]) == (1, 1)
            and graph.t(node.outputs[0]).shape[-1] <= C1_MAX_CHANNELS):
        return "c1"
    kh, kw = graph.t(node.inputs[1]).shape[1:3]
    if (kh, kw) == (1, 1) and tuple(a["stride"]) == (1, 1) and not any(a["padding"]):
        return "1x1"
    return "im2col"


def _conv_scratch(node: Node, graph: Graph) -> int:
    """Scratch of the 1x1 and im2col kernels: edgeq_matmul_column_bytes(K, 2) on the DSP path (two
    widened columns; the portable path needs at most as much); of the one-channel kernel: one
    int8 window, kernel rows of the width rounded up to 4."""
    kind = conv_kind(node, graph)
    kh, kw = graph.t(node.inputs[1]).shape[1:3]
    if kind == "c1":
        return kh * ((kw + 3) // 4 * 4)
    if kind not in ("1x1", "im2col"):
        return 0
    return column_bytes(int(np.prod(graph.t(node.inputs[1]).shape[1:])), 2)


def c1_weights(w: np.ndarray) -> np.ndarray:
    """OHWI (O, KH, KW, 1) weights in edgeq_conv2d_c1_s8's order: groups of 4 channels (zero
    padded), kernel rows, groups of 4 taps (rows zero padded), the 4 channels, taps 0, 2, 1, 3."""
    o, kh, kw = w.shape[:3]
    o4, kw4 = (o + 3) // 4 * 4, (kw + 3) // 4 * 4
    full = np.zeros((o4, kh, kw4), dtype=np.int64)
    full[:o, :, :kw] = w.reshape(o, kh, kw)
    taps = full.reshape(o4 // 4, 4, kh, kw4 // 4, 4)[..., [0, 2, 1, 3]]
    return taps.transpose(0, 2, 3, 1, 4).reshape(-1)


def c1_fields(layer: LayerCode) -> list[Field]:
    """``edgeq_conv2d_c1_params`` fields: the weights widened and paired for the one-channel
    kernel, the matrix products' folded biases and output stage."""
    w, o = layer.input(1), layer.output.shape[-1]
    weights = layer.const_array("c1_weights", "int16_t", c1_weights(w.data.astype(np.int64)), layer.node.inputs[1],
                                8, f"int8 weights, OHWI {shape_text(w.shape)}, as int16 for edgeq_conv2d_c1_s8 "
                                f"(groups of 4 channels, rows, groups of 4 taps, taps 0 2 1 3)", aligned=True)
    folded_bias, _ = folded_output_stage(layer)     # fast: conv_kind's condition
    return [("geometry", conv_geometry(layer)), ("pad_value", layer.attrs["input_zero_point"]),
            ("output_channels", o), ("weights", weights), ("bias", folded_bias),
            ("requant", channel_requant(layer, o)), ("output_offset", layer.attrs["output_zero_point"])]


CONV2D = kernel("edgeq_conv2d_s8", "edgeq_conv2d.c")
CONV2D_S16 = kernel("edgeq_conv2d_s16", "edgeq_conv2d_s16.c")
CONV2D_1X1 = kernel("edgeq_conv2d_1x1_s8", "edgeq_conv2d_1x1_s8.c", "edgeq_matmul_s8.c")
CONV2D_IM2COL = kernel("edgeq_conv2d_im2col_s8", "edgeq_conv2d_im2col_s8.c", "edgeq_matmul_s8.c")
CONV2D_C1 = kernel("edgeq_conv2d_c1_s8", "edgeq_conv2d_c1_s8.c")


@lowers("conv2d", kernels=(CONV2D, CONV2D_1X1, CONV2D_IM2COL, CONV2D_C1), int16=(CONV2D_S16,),
        scratch=_conv_scratch)
def _conv2d(layer: LayerCode) -> None:
    check_precision(layer)
    kind = conv_kind(layer.node, layer.graph)
    layer.note(window_note(layer))
    if kind == "c1":
        layer.note("one input channel, straight from the input")
        layer.call(CONV2D_C1, c1_fields(layer), args=[layer.ptr(layer.node.inputs[0]),
                                                      layer.ptr(layer.node.outputs[0]), layer.scratch("int8_t")])
        return
    if kind in ("1x1", "im2col"):
        args = [layer.ptr(layer.node.inputs[0]), layer.ptr(layer.node.outputs[0]), layer.scratch()]
        matmul = matmul_fields(layer, "int8 weights, OHWI")
        if kind == "1x1":
            layer.call(CONV2D_1X1, [("pixels", layer.output.size // layer.output.shape[-1]), ("matmul", matmul)],
                       args=args)
            return
        fields = [("geometry", conv_geometry(layer)), ("pad_value", layer.attrs["input_zero_point"]),
                  ("columns", 2), ("matmul", matmul)]
        layer.note("im2col, 2 pixels a step")
        layer.call(CONV2D_IM2COL, fields, args=args)
        return
    fields = weighted_fields(layer, "int8 weights, OHWI", [("geometry", conv_geometry(layer)),
                                                           ("output_channels", layer.output.shape[-1]),
                                                           ("groups", layer.attrs["groups"])])
    layer.call(layer.kernel_for(CONV2D, CONV2D_S16), fields)


DEPTHWISE = kernel("edgeq_depthwise_conv2d_s8", "edgeq_depthwise_conv2d.c")
DEPTHWISE_OPT = kernel("edgeq_depthwise_conv2d_opt_s8", "edgeq_depthwise_conv2d_opt_s8.c")
DEPTHWISE_3X3 = kernel("edgeq_depthwise_conv2d_3x3_s8", "edgeq_depthwise_conv2d_3x3_s8.c",
                       "edgeq_depthwise_conv2d_thumb2.c")
DEPTHWISE_S16 = kernel("edgeq_depthwise_conv2d_s16", "edgeq_depthwise_conv2d_s16.c")


def depthwise_weights(w2: np.ndarray) -> np.ndarray:
    """(C, taps) depthwise weights in edgeq_depthwise_conv2d_opt_s8's order: for each group of 4
    channels its taps of 4 weights ([C / 4][taps][4]), then [taps][C % 4] for the rest."""
    c, taps = w2.shape
    groups = c // 4 * 4
    head = w2[:groups].reshape(groups // 4, 4, taps).transpose(0, 2, 1).reshape(-1)
    return np.concatenate([head, w2[groups:].T.reshape(-1)])


def depthwise_kind(node: Node, graph: Graph) -> str:
    """"s16", "opt" (depth multiplier 1, input offset foldable) or "generic"."""
    x, y = graph.t(node.inputs[0]), graph.t(node.outputs[0])
    if x.dtype != "int8":
        return "s16"
    if y.shape[-1] != x.shape[-1] or not foldable(node, graph):
        return "generic"
    return "opt"


def depthwise_3x3(layer: LayerCode, fast: bool) -> bool:
    """Does an "opt" layer fit edgeq_depthwise_conv2d_3x3_s8 (3 x 3, C % 4 == 0, the fast
    requantization, no clamp)?  Its own file holds only those paths, so a model whose
    depthwise layers all fit links neither the tap table nor the per-channel code."""
    kh, kw = layer.input(1).shape[1:3]
    a = layer.attrs
    return bool((kh, kw) == (3, 3) and layer.output.shape[-1] % 4 == 0 and fast
                and int(a["act_min"]) == -128 and int(a["act_max"]) == 127)


@lowers("depthwise_conv2d", kernels=(DEPTHWISE, DEPTHWISE_OPT, DEPTHWISE_3X3), int16=(DEPTHWISE_S16,))
def _depthwise_conv2d(layer: LayerCode) -> None:
    check_precision(layer)
    layer.note(window_note(layer, groups=False))
    if depthwise_kind(layer.node, layer.graph) == "opt":
        a = layer.attrs
        w2 = _weights_2d(layer.node, layer.graph)
        bias = layer.input(2).data.astype(np.int64).reshape(-1)
        zp = int(a["input_zero_point"])
        fast = fast_requant(layer.node, layer.graph)
        o = layer.output.shape[-1]
        fields = [("geometry", conv_geometry(layer)), ("pad_value", zp), ("output_offset", a["output_zero_point"]),
                  ("weights", layer.const_array("grouped_weights", "int8_t", depthwise_weights(w2),
                                                layer.node.inputs[1], 16,
                                                f"int8 weights, 1HWO {shape_text(layer.input(1).shape)} in "
                                                f"groups of 4 channels (edgeq_depthwise_conv2d_opt_s8)",
                                                aligned=True)),
                  ("bias", layer.const_array("folded_bias", "int32_t", bias - zp * w2.sum(axis=1),
                                             layer.node.inputs[2], 6,
                                             f"int32 biases + input_offset ({-zp}) * the sum of each channel's weights")),
                  ("requant", channel_requant(layer, o)), ("fast_requant", int(fast))]
        layer.call(DEPTHWISE_3X3 if depthwise_3x3(layer, fast) else DEPTHWISE_OPT, fields,
                   args=[layer.ptr(layer.node.inputs[0]), layer.ptr(layer.node.outputs[0])])
        return
    multiplier = layer.output.shape[-1] // layer.input(0).shape[-1]
    fields = weighted_fields(layer, "int8 weights, 1HWO", [("geometry", conv_geometry(layer)),
                                                           ("depth_multiplier", multiplier)])
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
    rows = layer.input(0).size // in_f
    if layer.int16:
        shape = [("rows", rows), ("input_features", in_f), ("output_features", out_f)]
        fields = weighted_fields(layer, "int8 weights [out][in]", [("shape", shape)])
        layer.call(layer.kernel_for(FULLY_CONNECTED, FULLY_CONNECTED_S16), fields)
        return
    if not foldable(layer.node, layer.graph):
        raise UnsupportedOpError(f"linear at {layer.node.where()}: the input offset cannot be folded into the "
                                 f"biases without leaving int32 (weights or biases too large)")
    layer.call(FULLY_CONNECTED, [("rows", rows), ("matmul", matmul_fields(layer, "int8 weights [out][in]"))])
