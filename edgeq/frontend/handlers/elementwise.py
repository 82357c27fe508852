"""Handlers of elementwise ops: binary arithmetic with broadcasting and constants, clamps,
softmax, powers and roots, masks, and the activations."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..tracer import Tracer, aten, handles, unsupported
from .normalization import l2_normalized_axis


def _binary(t: Tracer, fx: torch.fx.Node, op: str, a: Any, b: Any, scale_b: float = 1.0) -> None:
    out_batch = t.broadcast_batch(fx, [a, b])
    t.emit(fx, op, [t.aligned(fx, a, out_batch), t.aligned(fx, b, out_batch, scale_b)], batch=out_batch)


def _alpha(t: Tracer, fx: torch.fx.Node) -> float:
    alpha = float(fx.kwargs.get("alpha", 1))
    if alpha != 1 and t.is_activation(fx.args[1]):
        raise unsupported(fx, f"{fx.target} with alpha on a tensor operand")
    return alpha


@handles(aten.add.Tensor, aten.add.Scalar)
def _add(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "add", fx.args[0], fx.args[1], _alpha(t, fx))


@handles(aten.sub.Tensor, aten.sub.Scalar)
def _sub(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "sub", fx.args[0], fx.args[1], _alpha(t, fx))


@handles(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(t: Tracer, fx: torch.fx.Node) -> None:
    if float(fx.kwargs.get("alpha", 1)) != 1:
        raise unsupported(fx, "rsub with alpha")
    _binary(t, fx, "sub", fx.args[1], fx.args[0])


@handles(aten.mul.Tensor, aten.mul.Scalar)
def _mul(t: Tracer, fx: torch.fx.Node) -> None:
    a, b = fx.args[:2]
    _binary(t, fx, "mul", a, b)


@handles(aten.div.Tensor, aten.div.Scalar)
def _div(t: Tracer, fx: torch.fx.Node) -> None:
    a, b = fx.args[:2]
    if fx.kwargs.get("rounding_mode") is not None:
        raise unsupported(fx, "division with a rounding mode")
    if t.is_activation(b):
        axis = l2_normalized_axis(t, a, b) if t.is_activation(a) else None
        if axis is not None:
            t.emit(fx, "l2_normalize", [t.tensor(a)], {"axis": axis})
        else:
            _binary(t, fx, "div", a, b)
        return
    data = t.const_array(b) if isinstance(b, torch.fx.Node) else np.array(b, dtype=np.float32)
    recip = (1.0 / data.astype(np.float64)).astype(np.float32)
    _binary(t, fx, "mul", a, recip)


@handles(aten.maximum.default)
def _maximum(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "maximum", *fx.args[:2])


@handles(aten.minimum.default)
def _minimum(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "minimum", *fx.args[:2])


@handles(aten._softmax.default, aten.softmax.int)
def _softmax(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    t.emit(fx, "softmax", [t.tensor(x)], {"axis": t.ir_dim(fx, x, int(fx.args[1])), "beta": 1.0})


@handles(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(t: Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    t.emit(fx, "log_softmax", [t.tensor(x)], {"axis": t.ir_dim(fx, x, int(fx.args[1]))})


def _clamp(t: Tracer, fx: torch.fx.Node, lo: float | None, hi: float | None) -> None:
    t.emit(fx, "clamp", [t.tensor(fx.args[0])], {"activation": {"min": lo, "max": hi}})


@handles(aten.relu.default)
def _relu(t: Tracer, fx: torch.fx.Node) -> None:
    _clamp(t, fx, 0.0, None)


@handles(aten.hardtanh.default)
def _hardtanh(t: Tracer, fx: torch.fx.Node) -> None:
    lo = float(fx.args[1]) if len(fx.args) > 1 else -1.0
    hi = float(fx.args[2]) if len(fx.args) > 2 else 1.0
    _clamp(t, fx, lo, hi)


@handles(aten.clamp.default)
def _clamp_op(t: Tracer, fx: torch.fx.Node) -> None:
    lo = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("min")
    hi = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("max")
    _clamp(t, fx, None if lo is None else float(lo), None if hi is None else float(hi))


# -- powers, roots, absolute value ------------------------------------------------------

@handles(aten.pow.Tensor_Scalar)
def _pow(t: Tracer, fx: torch.fx.Node) -> None:
    """x ** c for a constant c: square, square root, reciprocal square root, identity, or
    repeated squares and products for other small integer powers."""
    x, c = fx.args[0], float(fx.args[1])
    if c == 1.0:
        t.alias(fx, x)
    elif c == 2.0:
        t.emit(fx, "mul", [t.tensor(x), t.tensor(x)])
    elif c == 0.5:
        t.emit(fx, "sqrt", [t.tensor(x)])
    elif c == -0.5:
        t.emit(fx, "rsqrt", [t.tensor(x)])
    elif c == 3.0:
        sq = t.intermediate(fx, "mul", [t.tensor(x), t.tensor(x)], "squared")
        t.emit(fx, "mul", [sq, t.tensor(x)])
    else:
        raise unsupported(fx, f"x ** {c:g} (supported exponents: 0.5, -0.5, 1, 2, 3)")


@handles(aten.sqrt.default)
def _sqrt(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "sqrt", [t.tensor(fx.args[0])])


@handles(aten.rsqrt.default)
def _rsqrt(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "rsqrt", [t.tensor(fx.args[0])])


@handles(aten.abs.default)
def _abs(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "abs", [t.tensor(fx.args[0])])


# -- activations ------------------------------------------------------------------

@handles(aten.sigmoid.default)
def _sigmoid(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "sigmoid", [t.tensor(fx.args[0])])


@handles(aten.tanh.default)
def _tanh(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "tanh", [t.tensor(fx.args[0])])


@handles(aten.hardswish.default, whole=True)
def _hardswish(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "hardswish", [t.tensor(fx.args[0])])


@handles(aten.hardsigmoid.default, whole=True)
def _hardsigmoid(t: Tracer, fx: torch.fx.Node) -> None:
    """clamp(x + 3, 0, 6) / 6, as its decomposition gives it (the add fuses the clamp, TFLite's
    way of running it)."""
    x = fx.args[0]
    batch = t.batch_axis(x)
    shifted = t.intermediate(fx, "add", [t.tensor(x), t.aligned(fx, 3.0, batch)], "plus_3")
    clamped = t.intermediate(fx, "clamp", [shifted], "relu6", {"activation": {"min": 0.0, "max": 6.0}})
    t.emit(fx, "mul", [clamped, t.aligned(fx, np.float32(1.0 / 6.0), batch)])


@handles(aten.leaky_relu.default)
def _leaky_relu(t: Tracer, fx: torch.fx.Node) -> None:
    slope = float(fx.args[1]) if len(fx.args) > 1 else float(fx.kwargs.get("negative_slope", 0.01))
    _leaky_or_prelu(t, fx, fx.args[0], np.array(slope, np.float32))


@handles(aten._prelu_kernel.default, whole=True)
def _prelu_kernel(t: Tracer, fx: torch.fx.Node) -> None:
    """nn.PReLU on the one-trace path (its slope already shaped to broadcast over the channels,
    a folded constant); the decomposition's where(x > 0, x, x * slope) lands in ``_where``."""
    x, w = fx.args
    if not t.is_const(w):
        raise unsupported(fx, "PReLU with a computed slope")
    _leaky_or_prelu(t, fx, x, t.const_array(w))


def _leaky_or_prelu(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, slope: np.ndarray) -> None:
    if slope.size == 1 and float(slope.reshape(-1)[0]) >= 0:
        t.emit(fx, "leaky_relu", [t.tensor(x)], {"alpha": float(slope.reshape(-1)[0])})
        return
    batch = t.batch_axis(x)
    t.emit(fx, "prelu", [t.tensor(x), t.aligned(fx, slope, batch)], batch=batch)


@handles(aten.gelu.default)
def _gelu(t: Tracer, fx: torch.fx.Node) -> None:
    approximate = fx.kwargs.get("approximate", fx.args[1] if len(fx.args) > 1 else "none")
    t.emit(fx, "gelu", [t.tensor(fx.args[0])], {"approximate": str(approximate)})


# -- comparisons and masks ----------------------------------------------------------------

@handles(aten.gt.Scalar, aten.ge.Scalar)
def _compare(t: Tracer, fx: torch.fx.Node) -> None:
    """Comparisons of an activation are only taken as the condition of a PReLU-style ``where``."""
    t.conditions[fx.name] = fx


@handles(aten.eq.Scalar)
def _equals(t: Tracer, fx: torch.fx.Node) -> None:
    """``x == -inf`` (or +inf) of an activation is never true: every activation is a finite
    quantized value. MultiheadAttention's "all keys masked" guard asks exactly this; the
    answer is a constant, and the guard folds away."""
    value = float(fx.args[1])
    if not math.isinf(value):
        raise unsupported(fx, f"comparing an activation with {value:g} (only the infinity test of masked "
                              "attention is supported)")
    t.consts[fx.name] = torch.zeros(t.shape(fx), dtype=torch.bool)


@handles(aten.full_like.default, aten.zeros_like.default, aten.ones_like.default)
def _full_like(t: Tracer, fx: torch.fx.Node) -> None:
    """A tensor of the activation's shape filled with a constant is a constant."""
    value = {aten.zeros_like.default: 0.0, aten.ones_like.default: 1.0}.get(fx.target)
    value = float(fx.args[1]) if value is None else value
    t.consts[fx.name] = torch.full(t.shape(fx), value, dtype=fx.meta["val"].dtype)


@handles(aten.where.self)
def _where(t: Tracer, fx: torch.fx.Node) -> None:
    cond, a, b = fx.args
    if t.is_const(cond):
        _where_constant(t, fx, t.const_array(cond).astype(bool), a, b)
        return
    c = t.conditions.get(cond.name) if isinstance(cond, torch.fx.Node) else None
    if c is not None and c.args[0] is a and float(c.args[1]) == 0.0 and isinstance(b, torch.fx.Node) \
            and b.target == aten.mul.Tensor and a in b.args:
        w = b.args[1] if b.args[0] is a else b.args[0]
        if t.is_const(w) or not isinstance(w, torch.fx.Node):
            slope = t.const_array(w) if isinstance(w, torch.fx.Node) else np.array(w, np.float32)
            _leaky_or_prelu(t, fx, a, slope)
            return
    raise unsupported(fx, "where() with a computed condition (supported: a constant condition, and "
                          "PReLU / leaky ReLU: where(x > 0, x, x * slope))")


def _where_constant(t: Tracer, fx: torch.fx.Node, cond: np.ndarray, a: Any, b: Any) -> None:
    """where(c, a, b) with a constant condition: the one operand it always takes, or
    a * c + b * (1 - c) (exact: c is 0 or 1)."""
    for always, operand in ((not cond.any(), b), (cond.all(), a)):
        if always and t.is_activation(operand) and t.shape(operand) == t.shape(fx):
            t.alias(fx, operand)
            return
    raise unsupported(fx, "where() with a constant condition that selects from both operands")
