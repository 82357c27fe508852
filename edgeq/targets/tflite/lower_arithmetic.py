"""TFLite lowerings of the arithmetic ops beyond add/sub/mul and of the table ops TFLite has no
exact operator for: ABS, RSQRT, SQUARED_DIFFERENCE, DIV (with a zero-denominator guard),
CAST of integer inputs, L2_NORMALIZATION, and sqrt / gelu as an int8 lookup table
(CAST + ADD + GATHER, see ``ModelBuilder.table_lookup``).

Versions (LiteRT ``op_version.cc``): ABS 2 (int8) / 3 (quantized int16), RSQRT 2,
SQUARED_DIFFERENCE 2, DIV 1, EQUAL 1 (int32), SELECT_V2 1, CAST 3 (an int8 end), MAXIMUM / MINIMUM 1 on
int32 and 2 on int8, L2_NORMALIZATION 2, GATHER 2, ADD 1 (int32)."""
from __future__ import annotations

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Node
from .builder import BO, Act, ModelBuilder, per_tensor
from .lower_shapes import on_last_axis
from .registry import lowers
from .schema import fb


@lowers("abs")
def _abs(b: ModelBuilder, node: Node) -> None:
    wide = b.g.t(node.inputs[0]).dtype == "int16"
    b.op(BO.ABS, [b.tensor(node.inputs[0])], [b.tensor(node.outputs[0])], version=3 if wide else 2)


@lowers("rsqrt")
def _rsqrt(b: ModelBuilder, node: Node) -> None:
    """RSQRT; inputs below the zero point (negative reals) make TFLite's kernel fail, so when
    the zero point is above -128 a MAXIMUM first maps them to the zero point (the IR's table
    gives both the largest output)."""
    x = node.inputs[0]
    src = b.tensor(x)
    zp = int(b.g.t(x).quant.zero_point[0])
    if zp > -128:
        clamped = b.like(x, "nonnegative")
        bound = b.const(f"{x}_zero_bound", np.array([zp], dtype=np.int8), per_tensor(b.g.t(x).quant))
        b.op(BO.MAXIMUM, [src, bound], [clamped], fb.BuiltinOptions.MaximumMinimumOptions,
             fb.MaximumMinimumOptionsT(), version=2)
        src = clamped
    b.op(BO.RSQRT, [src], [b.tensor(node.outputs[0])], version=2)


def _lookup(b: ModelBuilder, node: Node) -> None:
    b.table_lookup(b.tensor(node.inputs[0]), node.attrs["table"], b.tensor(node.outputs[0]))


# sqrt: no SQRT is integer and exact in both runtimes; gelu: TFLite Micro has no GELU kernel.
# Both are int8 tables in the IR, looked up exactly.
lowers("sqrt")(_lookup)
lowers("gelu")(_lookup)


@lowers("squared_difference")
def _squared_difference(b: ModelBuilder, node: Node) -> None:
    shapes = [b.g.t(n).shape for n in node.inputs]
    if shapes[0] != shapes[1] and max(len(s) for s in shapes) > 4:
        raise UnsupportedOpError(f"squared_difference at {node.where()} broadcasts rank-{max(len(s) for s in shapes)} "
                                 "tensors: TFLite's SQUARED_DIFFERENCE broadcasts up to 4 dimensions")
    b.op(BO.SQUARED_DIFFERENCE, [b.tensor(n) for n in node.inputs], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.SquaredDifferenceOptions, fb.SquaredDifferenceOptionsT(), version=2)


@lowers("div")
def _div(b: ModelBuilder, node: Node) -> None:
    """DIV between a guard and a select: where the denominator is its zero point (DIV fails in
    LiteRT and is undefined in TFLite Micro there) it is replaced by a neighbour for DIV and the
    result by the output zero point (the IR's 0), with EQUAL and two SELECT_V2. The test is on
    the int32 values (CAST): TFLite Micro's int8 EQUAL rescales by the input scale and aborts
    when it is not below 1."""
    a, x1, x2, y = node.attrs, node.inputs[0], node.inputs[1], node.outputs[0]
    if a["max_right_shift"] > 31:
        raise UnsupportedOpError(
            f"div at {node.where()}: with these scales TFLite's DIV shifts right by up to {a['max_right_shift']} "
            "bits, which C leaves undefined (TFLite's kernel is exact only when s1 / (s2 * s_out) >= 64 for "
            "int8 operands); the onnx target lowers it")
    t2, ty = b.g.t(x2), b.g.t(y)
    zp2 = a["input2_zero_point"]
    q2 = per_tensor(t2.quant)
    raw = b.add_tensor(f"{x2}_int32", t2.shape, "int32")
    b.op(BO.CAST, [b.tensor(x2)], [raw], version=3)
    is_zero = b.add_tensor(f"{x2}_is_zero", t2.shape, "bool")
    b.op(BO.EQUAL, [raw, b.const(f"{x2}_zero", np.array([zp2], np.int32))], [is_zero],
         fb.BuiltinOptions.EqualOptions, fb.EqualOptionsT(), version=1)
    guarded = b.like(x2, "nonzero")
    neighbour = zp2 + 1 if zp2 < 127 else zp2 - 1
    b.op(BO.SELECT_V2, [is_zero, b.const(f"{x2}_neighbour", np.array([neighbour], np.int8), q2), b.tensor(x2)],
         [guarded], fb.BuiltinOptions.SelectV2Options, fb.SelectV2OptionsT(), version=1)
    quotient = b.like(y, "quotient")
    opts = fb.DivOptionsT()
    opts.fusedActivationFunction = Act.NONE
    broadcast_5d = b.g.t(x1).shape != t2.shape and len(ty.shape) > 4
    b.op(BO.DIV, [b.tensor(x1), guarded], [quotient], fb.BuiltinOptions.DivOptions, opts,
         version=2 if broadcast_5d else 1)
    zero = b.const(f"{y}_zero", np.array([a["output_zero_point"]], np.int8), per_tensor(ty.quant))
    b.op(BO.SELECT_V2, [is_zero, zero, quotient], [b.tensor(y)], fb.BuiltinOptions.SelectV2Options,
         fb.SelectV2OptionsT(), version=1)


@lowers("cast")
def _cast(b: ModelBuilder, node: Node) -> None:
    """int32 values saturated to [-128, 127] (MAXIMUM, MINIMUM) and CAST to int8: scale 1,
    zero point 0 (CAST itself wraps, and ignores quantization)."""
    x, y = node.inputs[0], node.outputs[0]
    if b.g.t(x).dtype != "int32":
        raise UnsupportedOpError(f"cast at {node.where()} of a {b.g.t(x).dtype} tensor: the tflite target casts "
                                 "int32 graph inputs")
    saturated = b.clamp_int32(b.tensor(x), -128, 127, "saturated")
    b.op(BO.CAST, [saturated], [b.tensor(y)], version=3)


@lowers("l2_normalize")
def _l2_normalize(b: ModelBuilder, node: Node) -> None:
    """L2_NORMALIZATION (last axis; another axis is moved last by TRANSPOSE and back)."""
    if len(b.g.t(node.inputs[0]).shape) > 4:
        raise UnsupportedOpError(f"l2_normalize of a rank-{len(b.g.t(node.inputs[0]).shape)} tensor at "
                                 f"{node.where()}: TFLite Micro's L2_NORMALIZATION takes at most 4 dimensions")
    opts = fb.L2NormOptionsT()
    opts.fusedActivationFunction = Act.NONE
    on_last_axis(b, node, lambda src, dst: b.op(BO.L2_NORMALIZATION, [src], [dst], fb.BuiltinOptions.L2NormOptions,
                                                 opts, version=2))

