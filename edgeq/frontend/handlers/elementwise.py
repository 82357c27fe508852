"""Handlers of elementwise ops: binary arithmetic with broadcasting and constants, clamps,
softmax, and the activations."""
from __future__ import annotations


import numpy as np
import torch

from ..tracer import Tracer, aten, handles, operand, unsupported


def _binary(t: Tracer, fx: torch.fx.Node, op: str, scale_b: float = 1.0) -> None:
    a, b = fx.args[:2]
    rank = len(fx.meta["val"].shape)
    acts = [x for x in (a, b) if isinstance(x, torch.fx.Node) and not t.is_const(x)]
    for x in acts:
        if len(x.meta["val"].shape) != rank or x.meta["val"].shape[0] != fx.meta["val"].shape[0]:
            raise unsupported(fx, f"{op} of a rank-{len(x.meta['val'].shape)} tensor broadcast to rank {rank}")
    t.emit(fx, op, [operand(t, fx, a, rank), operand(t, fx, b, rank, scale_b)])


@handles(aten.add.Tensor, aten.add.Scalar)
def _add(t: Tracer, fx: torch.fx.Node) -> None:
    alpha = float(fx.kwargs.get("alpha", 1))
    if alpha != 1 and isinstance(fx.args[1], torch.fx.Node) and not t.is_const(fx.args[1]):
        raise unsupported(fx, "add with alpha")
    _binary(t, fx, "add", alpha)


@handles(aten.sub.Tensor, aten.sub.Scalar)
def _sub(t: Tracer, fx: torch.fx.Node) -> None:
    alpha = float(fx.kwargs.get("alpha", 1))
    if alpha != 1 and isinstance(fx.args[1], torch.fx.Node) and not t.is_const(fx.args[1]):
        raise unsupported(fx, "sub with alpha")
    _binary(t, fx, "sub", alpha)


@handles(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(t: Tracer, fx: torch.fx.Node) -> None:
    if float(fx.kwargs.get("alpha", 1)) != 1:
        raise unsupported(fx, "rsub with alpha")
    rank = len(fx.meta["val"].shape)
    t.emit(fx, "sub", [operand(t, fx, fx.args[1], rank), operand(t, fx, fx.args[0], rank)])


@handles(aten.mul.Tensor, aten.mul.Scalar)
def _mul(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "mul")


@handles(aten.div.Tensor, aten.div.Scalar)
def _div(t: Tracer, fx: torch.fx.Node) -> None:
    b = fx.args[1]
    if isinstance(b, torch.fx.Node) and not t.is_const(b):
        raise unsupported(fx, "division by a tensor (only division by a constant is supported)")
    if fx.kwargs.get("rounding_mode") is not None:
        raise unsupported(fx, "division with a rounding mode")
    rank = len(fx.meta["val"].shape)
    data = t.const_array(b) if isinstance(b, torch.fx.Node) else np.array(b, dtype=np.float32)
    recip = (1.0 / data.astype(np.float64)).astype(np.float32)
    if data.ndim > rank:
        raise unsupported(fx, "constant divisor broadcasts over the batch dimension")
    c = t.graph.add_constant(f"{fx.name}_recip", recip.reshape((1,) * (rank - recip.ndim) + recip.shape)).name
    t.emit(fx, "mul", [operand(t, fx, fx.args[0], rank), c])


@handles(aten.maximum.default)
def _maximum(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "maximum")


@handles(aten.minimum.default)
def _minimum(t: Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "minimum")


@handles(aten._softmax.default, aten.softmax.int)
def _softmax(t: Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    t.emit(fx, "softmax", [t.tensor(fx.args[0])], {"axis": int(fx.args[1]) % rank, "beta": 1.0})


@handles(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(t: Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    axis = int(fx.args[1]) % rank
    if axis == 0:
        raise unsupported(fx, "log_softmax over the batch dimension")
    t.emit(fx, "log_softmax", [t.tensor(fx.args[0])], {"axis": axis})


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


# -- activations ------------------------------------------------------------------

@handles(aten.sigmoid.default)
def _sigmoid(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "sigmoid", [t.tensor(fx.args[0])])


@handles(aten.tanh.default)
def _tanh(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "tanh", [t.tensor(fx.args[0])])


@handles(aten.hardswish.default)
def _hardswish(t: Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "hardswish", [t.tensor(fx.args[0])])


@handles(aten.leaky_relu.default)
def _leaky_relu(t: Tracer, fx: torch.fx.Node) -> None:
    slope = float(fx.args[1]) if len(fx.args) > 1 else float(fx.kwargs.get("negative_slope", 0.01))
    _leaky_or_prelu(t, fx, fx.args[0], np.array(slope, np.float32))


def _leaky_or_prelu(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, slope: np.ndarray) -> None:
    if slope.size == 1 and float(slope.reshape(-1)[0]) >= 0:
        t.emit(fx, "leaky_relu", [t.tensor(x)], {"alpha": float(slope.reshape(-1)[0])})
        return
    rank = len(x.meta["val"].shape)
    t.emit(fx, "prelu", [t.tensor(x), operand(t, fx, slope, rank)])


@handles(aten.gelu.default)
def _gelu(t: Tracer, fx: torch.fx.Node) -> None:
    approximate = fx.kwargs.get("approximate", fx.args[1] if len(fx.args) > 1 else "none")
    t.emit(fx, "gelu", [t.tensor(fx.args[0])], {"approximate": str(approximate)})


@handles(aten.gt.Scalar, aten.ge.Scalar)
def _compare(t: Tracer, fx: torch.fx.Node) -> None:
    """Comparisons are only taken as the condition of a PReLU-style ``where``."""
    t.conditions[fx.name] = fx


@handles(aten.where.self)
def _where(t: Tracer, fx: torch.fx.Node) -> None:
    cond, a, b = fx.args
    c = t.conditions.get(cond.name) if isinstance(cond, torch.fx.Node) else None
    if c is not None and c.args[0] is a and float(c.args[1]) == 0.0 and isinstance(b, torch.fx.Node) \
            and b.target == aten.mul.Tensor and a in b.args:
        w = b.args[1] if b.args[0] is a else b.args[0]
        if t.is_const(w) or not isinstance(w, torch.fx.Node):
            slope = t.const_array(w) if isinstance(w, torch.fx.Node) else np.array(w, np.float32)
            _leaky_or_prelu(t, fx, a, slope)
            return
    raise unsupported(fx, "where() is supported only as PReLU / leaky ReLU: where(x > 0, x, x * slope)")
