"""TFLite lowerings of elementwise ops: ADD, SUB (as MUL by -1 and ADD), MUL, MAXIMUM / MINIMUM,
clamps, QUANTIZE between integer types, and the activations (int16 MUL version 4, int16
LOGISTIC / TANH version 3)."""
from __future__ import annotations


import numpy as np

from ...ir import Node, QuantParams
from .builder import BO, INT8_MAX, INT8_MIN, Act, ModelBuilder, fused_activation, requantized_input
from .registry import lowers
from .schema import fb


@lowers("add")
def _add(b: ModelBuilder, node: Node) -> None:
    """ADD. int16 (16x8) operands: ``pot_scale_int16`` false selects TFLite's general-scale int16
    algorithm (left shift 15, the reference's); the schema default (true) would make LiteRT
    take its power-of-two-scale path whenever all three scales happen to be powers of two."""
    code, out, finish = b.output_with_activation(node)
    opts = fb.AddOptionsT()
    opts.fusedActivationFunction = code
    wide = b.g.t(node.outputs[0]).dtype == "int16"
    opts.potScaleInt16 = not wide
    b.op(BO.ADD, [b.tensor(i) for i in node.inputs], [out], fb.BuiltinOptions.AddOptions, opts,
         version=3 if wide else 2)
    finish()


@lowers("requantize")
def _requantize(b: ModelBuilder, node: Node) -> None:
    """QUANTIZE between integer types (int8 <-> int16 at a 16x8 boundary): TFLite's Requantize,
    MultiplyByQuantizedMultiplier(x - zp_in, M(s_in / s_out)) + zp_out, saturated."""
    y = node.outputs[0]
    b.op(BO.QUANTIZE, [b.tensor(node.inputs[0])], [b.tensor(y)], version=2 if b.g.t(y).dtype == "int16" else 1)


def _negated(b: ModelBuilder, name: str) -> int:
    """-x exactly, as int8 ``-q - 1`` with zero point ``-zp - 1`` (same scale): a constant is
    negated in place, an activation by MUL with the constant -1 (q = -127, scale 1/127), whose
    result is an integer up to ~1e-5 before rounding, so exact in every runtime. int16 (zero
    point 0): MUL by -1 at scale 1 (multiplier exactly 1 in both runtimes), saturating at
    -(-32768) = 32767 as the IR's 16x8 sub does."""
    t = b.g.t(name)
    s, zp = t.quant.scalar()
    if t.dtype == "int16":
        neg = b.add_tensor(f"{name}_negated", t.shape, "int16", QuantParams(np.float32(s), 0))
        minus_one = b.const(f"{name}_minus_one", np.array([-1], dtype=np.int16), QuantParams(np.float32(1.0), 0))
        opts = fb.MulOptionsT()
        opts.fusedActivationFunction = Act.NONE
        b.op(BO.MUL, [b.tensor(name), minus_one], [neg], fb.BuiltinOptions.MulOptions, opts, version=4)
        return neg
    q = QuantParams(np.float32(s), -zp - 1)
    if t.is_constant:
        return b.add_tensor(f"{name}_negated", t.shape, "int8", q, (-t.data.astype(np.int16) - 1).astype(np.int8))
    neg = b.add_tensor(f"{name}_negated", t.shape, "int8", q)
    minus_one = b.const(f"{name}_minus_one", np.array([-127], dtype=np.int8),
                        QuantParams(np.float32(1.0 / 127.0), 0))
    opts = fb.MulOptionsT()
    opts.fusedActivationFunction = Act.NONE
    b.op(BO.MUL, [b.tensor(name), minus_one], [neg], fb.BuiltinOptions.MulOptions, opts, version=2)
    return neg


@lowers("sub")
def _sub(b: ModelBuilder, node: Node) -> None:
    """x1 - x2 as ADD(x1, -x2): TFLite's own SUB derives its multipliers in float in TFLite
    Micro but in double in LiteRT, so it cannot be bit-exact in both; ADD is (double in both)."""
    neg = _negated(b, node.inputs[1])
    code, out, finish = b.output_with_activation(node)
    opts = fb.AddOptionsT()
    opts.fusedActivationFunction = code
    wide = b.g.t(node.outputs[0]).dtype == "int16"
    opts.potScaleInt16 = not wide        # the general-scale int16 ADD (see _add)
    b.op(BO.ADD, [b.tensor(node.inputs[0]), neg], [out], fb.BuiltinOptions.AddOptions, opts,
         version=3 if wide else 2)
    finish()


@lowers("mul")
def _mul(b: ModelBuilder, node: Node) -> None:
    code, out, finish = b.output_with_activation(node)
    opts = fb.MulOptionsT()
    opts.fusedActivationFunction = code
    (s1, _), (s2, _), (so, _) = (b.g.t(n).quant.scalar() for n in (*node.inputs, node.outputs[0]))
    version = 4 if b.g.t(node.outputs[0]).dtype == "int16" else 3 if float(s1) * float(s2) / float(so) >= 1.0 else 2
    b.op(BO.MUL, [b.tensor(i) for i in node.inputs], [out], fb.BuiltinOptions.MulOptions, opts, version=version)
    finish()


def _min_max(b: ModelBuilder, node: Node, code: int) -> None:
    ins = [requantized_input(b, node, k, p) for k, p in enumerate(node.attrs["requant"])]
    lo, hi = node.attrs["act_min"], node.attrs["act_max"]
    y = b.tensor(node.outputs[0])
    out = y if (lo <= INT8_MIN and hi >= INT8_MAX) else b.like_index(y, "unclamped")
    b.op(code, ins, [out], fb.BuiltinOptions.MaximumMinimumOptions, fb.MaximumMinimumOptionsT(), version=2)
    if out != y:
        b.clamp(out, y, lo, hi)


@lowers("maximum")
def _maximum(b: ModelBuilder, node: Node) -> None:
    _min_max(b, node, BO.MAXIMUM)


@lowers("minimum")
def _minimum(b: ModelBuilder, node: Node) -> None:
    _min_max(b, node, BO.MINIMUM)


@lowers("clamp")
def _clamp(b: ModelBuilder, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    qx, qy = b.g.t(x).quant, b.g.t(y).quant
    same_quant = qx.scalar() == qy.scalar()
    if not same_quant and fused_activation(node) == Act.RELU:
        # RELU requantizes (input scale / output scale, double rounding) and clamps at the
        # output zero point in TFLite Micro and LiteRT alike: the IR clamp's algorithm.
        b.op(BO.RELU, [b.tensor(x)], [b.tensor(y)], version=2)
        return
    src = b.tensor(x)
    if not same_quant:
        # QUANTIZE int8 -> int8 is Requantize: MultiplyByQuantizedMultiplier(x - zp_in,
        # M(s_in / s_out)) + zp_out, saturated; the first half of the IR clamp.
        src = b.like(y, "requantized")
        b.op(BO.QUANTIZE, [b.tensor(x)], [src], version=1)
    b.clamp(src, b.tensor(y), node.attrs["act_min"], node.attrs["act_max"])


def _simple(builtin: int, version: int):
    def lower(b: ModelBuilder, node: Node) -> None:
        b.op(builtin, [b.tensor(node.inputs[0])], [b.tensor(node.outputs[0])], version=version)
    return lower


def _fixed_point_table(builtin: int):
    def lower(b: ModelBuilder, node: Node) -> None:
        x = b.tensor(node.inputs[0])
        s2 = node.attrs.get("input_scale")
        if s2 is not None:   # relabel the input (an identity requantization), see ops/activations.py
            t = b.g.t(node.inputs[0])
            relabelled = b.add_tensor(f"{node.inputs[0]}_relabelled", t.shape, "int8",
                                      QuantParams(np.float32(s2), int(t.quant.zero_point[0])))
            b.op(BO.QUANTIZE, [x], [relabelled], version=1)
            x = relabelled
        wide = b.g.t(node.inputs[0]).dtype == "int16"      # int16 LOGISTIC / TANH: version 3
        b.op(builtin, [x], [b.tensor(node.outputs[0])], version=3 if wide else 2)
    return lower


lowers("sigmoid")(_fixed_point_table(BO.LOGISTIC))
lowers("tanh")(_fixed_point_table(BO.TANH))
lowers("hardswish")(_simple(BO.HARD_SWISH, 1))


@lowers("leaky_relu")
def _leaky_relu(b: ModelBuilder, node: Node) -> None:
    opts = fb.LeakyReluOptionsT()
    opts.alpha = float(np.float32(node.attrs["alpha"]))
    b.op(BO.LEAKY_RELU, [b.tensor(node.inputs[0])], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.LeakyReluOptions, opts, version=1)


@lowers("prelu")
def _prelu(b: ModelBuilder, node: Node) -> None:
    b.op(BO.PRELU, [b.tensor(node.inputs[0]), b.tensor(node.inputs[1])], [b.tensor(node.outputs[0])], version=1)



