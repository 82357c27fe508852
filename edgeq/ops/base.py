"""The op registry: each op is defined once (shape rule, float reference, quantization rule,
integer reference kernel). Targets lower ops in their own modules."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..intmath import round_half_away
from ..ir import Graph, Node, QuantParams

INT8_MIN, INT8_MAX = -128, 127


class OpDef:
    """Base class of an op definition. Subclasses override what applies to them."""

    name: str = ""
    #: output must carry the input's quantization (TFLite kernels assume it: pooling, reshape)
    same_quant_as_input: bool = False
    #: fixed output quantization (scale, zero_point), e.g. softmax's 1/256, -128
    fixed_output_quant: tuple[float, int] | None = None
    #: True for ops that only move data (the quantizer and interpreter treat them as copies)
    layout_only: bool = False
    #: set for ops whose output is an integer index tensor (argmax: "int32"), not quantized
    output_dtype: str | None = None
    #: the integer kernel also runs with int16 activations (TFLite's "16x8" mode: int16 inputs
    #: and outputs with zero point 0, int8 weights, int64 bias); see edgeq.passes.precision
    supports_int16: bool = False
    #: inserted by a pass, never traced from a model (``requantize``): not listed for users
    internal: bool = False

    def int16_capable(self, node: Node, graph: Graph) -> bool:
        """Can this node run in 16x8 mode? ``supports_int16``, unless a use of the op is excluded."""
        return self.supports_int16

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        raise NotImplementedError(self.name)

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(self.name)

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        """The output quantization to use given the calibrated one (inputs are quantized already).

        Ops whose TFLite kernels derive a multiplier in float in one runtime and in double in
        another move the scale by a few float32 ulps to where both agree."""
        return scale, zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        """Compute integer parameters (weights, bias, multipliers) into node.attrs / tensors."""

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(self.name)

    def macs(self, node: Node, graph: Graph) -> int:
        return 0


REGISTRY: dict[str, OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str) -> OpDef:
    return REGISTRY[name]


# --- helpers shared by op definitions --------------------------------------------

def act_quant(graph: Graph, name: str) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized activation."""
    q = graph.t(name).quant
    assert q is not None, f"tensor {name} is not quantized"
    return q.scalar()


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """TFLite's way of quantizing a clamp bound: float32 division, round half away."""
    return zero_point + round_half_away(float(np.float32(value) / np.float32(scale)))


def activation_range(node: Node, graph: Graph, out_name: str) -> tuple[int, int]:
    """Integer clamp bounds of a fused activation (TFLite CalculateActivationRangeQuantized)."""
    scale, zp = act_quant(graph, out_name)
    info = np.iinfo(graph.t(out_name).dtype)
    lo, hi = int(info.min), int(info.max)
    act = node.attrs.get("activation")
    if act is None:
        return lo, hi
    a_lo, a_hi = act["min"], act["max"]
    if a_lo is not None:
        lo = max(lo, quantize_value(a_lo, scale, zp))
    if a_hi is not None:
        hi = min(hi, quantize_value(a_hi, scale, zp))
    return lo, hi


def apply_float_activation(node: Node, y: np.ndarray) -> np.ndarray:
    act = node.attrs.get("activation")
    if act is None:
        return y
    lo = -np.inf if act["min"] is None else act["min"]
    hi = np.inf if act["max"] is None else act["max"]
    return np.clip(y, lo, hi).astype(np.float32)


def symmetric_weight_quant(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, QuantParams]:
    """int8 weights in [-127, 127], zero point 0, per channel along ``axis`` (or per tensor)."""
    if axis is None:
        amax = np.array([np.abs(w).max()], dtype=np.float64)
        bshape = (1,) * w.ndim
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1).astype(np.float64)
        bshape = tuple(w.shape[axis] if i == axis else 1 for i in range(w.ndim))
    scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(bshape)), -127, 127).astype(np.int8)
    return q, QuantParams(scale, np.zeros_like(scale, dtype=np.int64), axis)


def is_int16(graph: Graph, name: str) -> bool:
    """True when activation ``name`` is int16 (the consuming layer runs in 16x8 mode)."""
    return graph.t(name).dtype == "int16"


def quantize_bias(b: np.ndarray, input_scale: float, weight_scales: np.ndarray,
                  wide: bool = False) -> tuple[np.ndarray, QuantParams]:
    """int32 bias (int64 when ``wide``: 16x8 layers) at input_scale * weight_scale[c], zero point 0."""
    scale = (np.float64(input_scale) * weight_scales.astype(np.float64)).astype(np.float32)
    q = np.round(b.astype(np.float64) / scale.astype(np.float64))
    q = np.clip(q, -(2**47), 2**47 - 1).astype(np.int64) if wide else \
        np.clip(q, -(2**31) + 1, 2**31 - 1).astype(np.int32)
    axis = 0 if scale.size > 1 else None
    return q, QuantParams(scale, np.zeros(scale.size, dtype=np.int64), axis)


def conv_out_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    eff = dilation * (kernel - 1) + 1
    span = size + pad_total - eff
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    return out


def to_nchw(x: np.ndarray, graph: Graph) -> np.ndarray:
    """View a 4-D activation in NCHW whatever the graph's layout (kernels compute in NCHW)."""
    return x.transpose(0, 3, 1, 2) if graph.layout == "nhwc" else x


def from_nchw(x: np.ndarray, graph: Graph) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if graph.layout == "nhwc" else x


def spatial_op(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, Graph], np.ndarray]:
    """Wrap an NCHW computation so it runs on a graph of either layout."""
    def run(x: np.ndarray, graph: Graph) -> np.ndarray:
        return from_nchw(fn(to_nchw(x, graph)), graph)
    return run
