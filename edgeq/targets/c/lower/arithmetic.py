"""Lowerings of the elementwise arithmetic beyond add/sub/mul: squared_difference and div
(numpy broadcasting, constant operands), abs (int8 and 16x8), and the cast of int32 ids or
masks to int8."""
from __future__ import annotations

from ....errors import UnsupportedOpError
from ..layer import LayerCode
from .elementwise import broadcasting_call
from .registry import kernel, lowers

SQUARED_DIFFERENCE = kernel("edgeq_squared_difference_s8", "edgeq_squared_difference.c")


@lowers("squared_difference", kernels=(SQUARED_DIFFERENCE,))
def _squared_difference(layer: LayerCode) -> None:
    a = layer.attrs
    broadcasting_call(layer, SQUARED_DIFFERENCE, [
        ("left_shift", a["left_shift"]),
        ("input1_offset", -int(a["input1_zero_point"])),
        ("input1_multiplier", a["input1_multiplier"]), ("input1_shift", a["input1_shift"]),
        ("input2_offset", -int(a["input2_zero_point"])),
        ("input2_multiplier", a["input2_multiplier"]), ("input2_shift", a["input2_shift"]),
        ("output_offset", a["output_zero_point"]),
        ("output_multiplier", a["output_multiplier"]), ("output_shift", a["output_shift"])])


DIV = kernel("edgeq_div_s8", "edgeq_div.c")


@lowers("div", kernels=(DIV,))
def _div(layer: LayerCode) -> None:
    node, a = layer.node, layer.attrs
    if int(a["min_right_shift"]) < 0:
        raise UnsupportedOpError(f"div at {node.where()}: the output scale is too fine for TFLite's DIV "
                                 f"(a left shift); see `edgeq targets --ops`")
    if int(a["max_right_shift"]) > 31:
        layer.note(f"right shifts up to {a['max_right_shift']} bits, rounded as the mathematics says")
    broadcasting_call(layer, DIV, [
        ("input1_offset", -int(a["input1_zero_point"])), ("input2_offset", -int(a["input2_zero_point"])),
        ("output_offset", a["output_zero_point"]), ("multiplier", a["multiplier"]), ("shift", a["shift"])])


ABS = kernel("edgeq_abs_s8", "edgeq_abs.c")
ABS_S16 = kernel("edgeq_abs_s16", "edgeq_abs_s16.c")


@lowers("abs", kernels=(ABS,), int16=(ABS_S16,))
def _abs(layer: LayerCode) -> None:
    a = layer.attrs
    rescale = bool(a["needs_rescale"])
    layer.call(layer.kernel_for(ABS, ABS_S16), [
        ("size", layer.output.size), ("input_offset", -int(a["input_zero_point"])),
        ("rescale", int(rescale)), ("multiplier", a["multiplier"] if rescale else 0),
        ("shift", a["shift"] if rescale else 0), ("output_offset", a["output_zero_point"])])


CAST = kernel("edgeq_cast_s32_s8", "edgeq_cast.c")


@lowers("cast", kernels=(CAST,), int32_inputs=True)
def _cast(layer: LayerCode) -> None:
    node = layer.node
    src = layer.input(0)
    if src.dtype != "int32" or layer.output.dtype != "int8":
        raise UnsupportedOpError(f"cast at {node.where()}: {src.dtype} -> {layer.output.dtype}; the C target "
                                 f"casts int32 activations to int8 only")
    layer.note("int32 -> int8, saturating")
    layer.call(CAST, args=[layer.ptr(node.inputs[0]), layer.ptr(node.outputs[0]), str(layer.output.size)])
