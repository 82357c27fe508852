"""Lowerings of the elementwise ops: add, sub, mul, maximum, minimum (numpy broadcasting,
constant operands; add, sub and mul also 16x8), clamp, leaky_relu, prelu, the 256-entry table
activations, and sigmoid / tanh in 16x8 (TFLite's interpolated int16 kernels)."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ....intmath import multiply_by_quantized_multiplier
from ....intmath_activations import sigmoid_table_u16
from ....ops import REGISTRY
from ..cformat import Field
from ..cheaders import max_dims
from ..layer import LayerCode
from ..strides import broadcast_strides, collapse_dims, padded
from .conv import FAST_ACC_LIMIT, FAST_SHIFTS
from .registry import Kernel, kernel, lowers

TABLE_SIZE = 256


def broadcast_shape(layer: LayerCode) -> list[Field]:
    """``edgeq_broadcast_shape`` fields of a binary op (inputs 0 and 1 against the output)."""
    node, out = layer.node, list(layer.output.shape)
    shape, (s1, s2) = collapse_dims(out, [broadcast_strides(layer.input(0).shape, len(out)),
                                          broadcast_strides(layer.input(1).shape, len(out))])
    n = max_dims()
    if len(shape) > n:
        raise UnsupportedOpError(f"{node.op} at {node.where()} broadcasts over {len(shape)} dimensions; "
                                 f"the C kernels take at most {n} (see `edgeq targets --ops`)")
    return [("dims", len(shape)), ("output_shape", padded(shape, n, 1)),
            ("input1_strides", padded(s1, n, 0)), ("input2_strides", padded(s2, n, 0))]


def add_fast(a: dict) -> bool:
    """Whether edgeq_add_s8 may take its fast path: the preconditions of edgeq_requantize_fast()
    (those of the convolutions' fast path) hold for every int8 input value: |x << k| and
    |s1 + s2| below FAST_ACC_LIMIT, every shift in FAST_SHIFTS (right shifts).  k is left_shift,
    or left_shift + 1 for an input rescaled by (multiplier, shift) = (2^30, 0), which the kernel
    rescales with right shift 1 (see edgeq_add.c)."""
    q = np.arange(-128, 128, dtype=np.int64)
    scaled = []
    if a["left_shift"] < 1:
        return False
    for k in ("1", "2"):
        half = a[f"input{k}_shift"] == 0 and a[f"input{k}_multiplier"] == 1 << 30
        if not half and not FAST_SHIFTS[0] <= a[f"input{k}_shift"] <= FAST_SHIFTS[1]:
            return False
        x = q - int(a[f"input{k}_zero_point"])
        if np.abs(x << (int(a["left_shift"]) + int(half))).max() >= FAST_ACC_LIMIT:
            return False
        scaled.append(np.abs(multiply_by_quantized_multiplier(x << int(a["left_shift"]), a[f"input{k}_multiplier"],
                                                              a[f"input{k}_shift"])).max())
    return bool(FAST_SHIFTS[0] <= a["output_shift"] <= FAST_SHIFTS[1] and sum(scaled) < FAST_ACC_LIMIT)


def add_fields(a: dict, size: int, fast: bool = False) -> list[Field]:
    """``edgeq_add_params`` fields (TFLite ADD's integer parameters); ``fast``: the kernel may use
    its fast path (edgeq_add_s8 only, see add_fast)."""
    return [
        ("size", size), ("left_shift", a["left_shift"]),
        ("input1_offset", -int(a["input1_zero_point"])),
        ("input1_multiplier", a["input1_multiplier"]), ("input1_shift", a["input1_shift"]),
        ("input2_offset", -int(a["input2_zero_point"])),
        ("input2_multiplier", a["input2_multiplier"]), ("input2_shift", a["input2_shift"]),
        ("output_offset", a["output_zero_point"]),
        ("output_multiplier", a["output_multiplier"]), ("output_shift", a["output_shift"]),
        ("act_min", a["act_min"]), ("act_max", a["act_max"]), ("fast", int(fast))]


def rescale_fields(requant: dict | None) -> list[Field]:
    """``edgeq_rescale_params`` fields from an op's ``requant`` entry (None: same quantization)."""
    if requant is None:
        return [("rescale", 0), ("input_offset", 0), ("multiplier", 0), ("shift", 0), ("output_offset", 0)]
    return [("rescale", 1), ("input_offset", -int(requant["input_zero_point"])),
            ("multiplier", requant["multiplier"]), ("shift", requant["shift"]),
            ("output_offset", requant["output_zero_point"])]


def binary_args(layer: LayerCode) -> list[str]:
    """Both operands (activations or constant arrays), then the output."""
    return [layer.operand(0), layer.operand(1), layer.tptr(layer.node.outputs[0])]


def broadcasting_call(layer: LayerCode, k: Kernel, fields: list[Field]) -> None:
    """A call of a binary kernel with numpy broadcasting: ``fields`` plus the ``shape``."""
    args = binary_args(layer)
    layer.call(k, [*fields, ("shape", broadcast_shape(layer))], args)


ADD = kernel("edgeq_add_s8", "edgeq_add.c")
ADD_S16 = kernel("edgeq_add_s16", "edgeq_add_s16.c")
ADD_BROADCAST = kernel("edgeq_add_broadcast_s8", "edgeq_add_broadcast.c")
SUB = kernel("edgeq_sub_s8", "edgeq_sub.c")
SUB_S16 = kernel("edgeq_sub_s16", "edgeq_sub_s16.c")


@lowers("add", kernels=(ADD, ADD_BROADCAST), int16=(ADD_S16,))
def _add(layer: LayerCode) -> None:
    node, graph = layer.node, layer.graph
    same_shape = all(graph.t(n).shape == layer.output.shape for n in node.inputs)
    size = int(np.prod(layer.output.shape))
    if layer.int16:
        if not same_shape or any(graph.t(n).is_constant or graph.t(n).dtype != "int16"
                                 for n in [*node.inputs, *node.outputs]):
            raise UnsupportedOpError(f"add at {node.where()}: the C target's int16 add takes two "
                                     f"int16 activations of the output's shape (no broadcasting, "
                                     f"no constant operand)")
        layer.call(layer.kernel_for(ADD, ADD_S16), add_fields(node.attrs, size))
        return
    if same_shape:
        layer.call(ADD, add_fields(node.attrs, size, add_fast(node.attrs)), binary_args(layer))
    else:
        broadcasting_call(layer, ADD_BROADCAST, [("add", add_fields(node.attrs, 0))])


@lowers("sub", kernels=(SUB,), int16=(SUB_S16,))
def _sub(layer: LayerCode) -> None:
    if layer.int16:
        _check_int16_operands(layer)
    broadcasting_call(layer, layer.kernel_for(SUB, SUB_S16), [("add", add_fields(layer.attrs, 0))])


def _check_int16_operands(layer: LayerCode) -> None:
    """A 16x8 binary layer: every operand int16 (an int8 one would need a requantize first)."""
    node, graph = layer.node, layer.graph
    if any(graph.t(n).dtype != "int16" for n in [*node.inputs, *node.outputs]):
        raise UnsupportedOpError(f"{node.op} at {node.where()}: the C target's 16x8 {node.op} takes int16 "
                                 f"operands only ({', '.join(graph.t(n).dtype for n in node.inputs)} given)")


MUL = kernel("edgeq_mul_s8", "edgeq_mul.c")
MUL_S16 = kernel("edgeq_mul_s16", "edgeq_mul_s16.c")


@lowers("mul", kernels=(MUL,), int16=(MUL_S16,))
def _mul(layer: LayerCode) -> None:
    a = layer.attrs
    if layer.int16:
        _check_int16_operands(layer)
    broadcasting_call(layer, layer.kernel_for(MUL, MUL_S16), [
        ("input1_offset", -int(a["input1_zero_point"])), ("input2_offset", -int(a["input2_zero_point"])),
        ("output_offset", a["output_zero_point"]), ("multiplier", a["multiplier"]), ("shift", a["shift"]),
        ("act_min", a["act_min"]), ("act_max", a["act_max"])])


MAXIMUM = kernel("edgeq_maximum_s8", "edgeq_minmax.c")
MINIMUM = kernel("edgeq_minimum_s8", "edgeq_minmax.c")


def _min_max(layer: LayerCode, k: Kernel) -> None:
    a = layer.attrs
    r1, r2 = a["requant"]
    broadcasting_call(layer, k, [("input1", rescale_fields(r1)), ("input2", rescale_fields(r2)),
                                 ("act_min", a["act_min"]), ("act_max", a["act_max"])])


@lowers("maximum", kernels=(MAXIMUM,))
def _maximum(layer: LayerCode) -> None:
    _min_max(layer, MAXIMUM)


@lowers("minimum", kernels=(MINIMUM,))
def _minimum(layer: LayerCode) -> None:
    _min_max(layer, MINIMUM)


CLAMP = kernel("edgeq_clamp_s8", "edgeq_clamp.c")


@lowers("clamp", kernels=(CLAMP,))
def _clamp(layer: LayerCode) -> None:
    a = layer.attrs
    layer.call(CLAMP, [
        ("size", layer.output.size), ("input_offset", -int(a["input_zero_point"])),
        ("multiplier", a["multiplier"]), ("shift", a["shift"]), ("output_offset", a["output_zero_point"]),
        ("act_min", a["act_min"]), ("act_max", a["act_max"])])


LEAKY_RELU = kernel("edgeq_leaky_relu_s8", "edgeq_leaky_relu.c")


@lowers("leaky_relu", kernels=(LEAKY_RELU,))
def _leaky_relu(layer: LayerCode) -> None:
    a = layer.attrs
    layer.note(f"alpha {float(a['alpha']):g}")
    layer.call(LEAKY_RELU, [
        ("size", layer.output.size),
        ("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"]),
        ("identity_multiplier", a["multiplier_identity"]), ("identity_shift", a["shift_identity"]),
        ("alpha_multiplier", a["multiplier_alpha"]), ("alpha_shift", a["shift_alpha"])])


PRELU = kernel("edgeq_prelu_s8", "edgeq_prelu.c")


@lowers("prelu", kernels=(PRELU,))
def _prelu(layer: LayerCode) -> None:
    a = layer.attrs
    broadcasting_call(layer, PRELU, [
        ("input_offset", -int(a["input_zero_point"])), ("alpha_offset", -int(a["alpha_zero_point"])),
        ("output_offset", a["output_zero_point"]),
        ("identity_multiplier", a["multiplier_1"]), ("identity_shift", a["shift_1"]),
        ("alpha_multiplier", a["multiplier_2"]), ("alpha_shift", a["shift_2"])])


LOOKUP = kernel("edgeq_lookup_s8", "edgeq_lookup.c")


def _table(layer: LayerCode) -> None:
    """A table op (``OpDef.table``): its int8[256] table, built by the op's quantize()."""
    node = layer.node
    table = np.asarray(node.attrs["table"]).reshape(-1)
    if table.size != TABLE_SIZE:
        raise UnsupportedOpError(f"{node.where()}: lookup table has {table.size} entries, not {TABLE_SIZE}")
    sym = layer.const_array("table", "int8_t", table.astype(np.int64), node.name, 16,
                            f"{node.op} lookup table: output for input -128..127")
    layer.call(LOOKUP, args=[sym, layer.ptr(node.inputs[0]), layer.ptr(node.outputs[0]), str(layer.output.size)])


SIGMOID_S16 = kernel("edgeq_sigmoid_s16", "edgeq_sigmoid_s16.c")
TANH_S16 = kernel("edgeq_tanh_s16", "edgeq_tanh_s16.c")
#: the 16x8 kernels of the table ops that have one (TFLite's int16 LOGISTIC and TANH)
TABLE_OPS_S16 = {"sigmoid": SIGMOID_S16, "tanh": TANH_S16}


def _table_or_s16(layer: LayerCode) -> None:
    """An int8 table op, or in a 16x8 layer TFLite's int16 LOGISTIC / TANH, whose sigmoid table
    (0.16 fixed point, shared by every such layer of the model) goes into the weights."""
    if not layer.int16:
        _table(layer)
        return
    node, a = layer.node, layer.attrs
    table = np.asarray(sigmoid_table_u16(), dtype=np.int64)
    sym = layer.const_array("sigmoid_table", "uint16_t", table, "edgeq.sigmoid_table_u16", 16,
                            "TFLite's int16 sigmoid table: sigmoid(k / 24), 0.16 fixed point")
    layer.call(layer.kernel_for(LOOKUP, TABLE_OPS_S16[node.op]), [
        ("size", layer.output.size), ("input_multiplier", a["input_multiplier"]),
        ("input_left_shift", a["input_left_shift"]), ("table", sym)])


for _name, _op in sorted(REGISTRY.items()):
    if _op.table and _name in TABLE_OPS_S16:
        lowers(_name, kernels=(LOOKUP,), int16=(TABLE_OPS_S16[_name],))(_table_or_s16)
    elif _op.table:
        lowers(_name, kernels=(LOOKUP,))(_table)
