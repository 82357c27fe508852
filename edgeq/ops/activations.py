"""Nonlinear activations: sigmoid, tanh, hardswish, gelu (int8 lookup tables; sigmoid and tanh
also TFLite's int16 kernels), leaky_relu and prelu (two requantization branches), and
``gelu_tanh_form`` (GELU from ops with int16 kernels, for a pass to call).

The table ops build their 256-entry int8 table in ``quantize()``: sigmoid, tanh and hardswish
by running TFLite's integer kernels (``edgeq.intmath_activations``) on every int8 input, gelu
from its float definition the way LiteRT's int8 GELU builds its table. ``run_int`` is a lookup.
sigmoid and tanh have TFLite's fixed output quantization (1/256, -128 and 1/128, 0).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import intmath_activations as ia
from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..ir import Graph, Node, Tensor
from ..quant import constant_params
from .base import Attr, OpDef, TableLookup, act_quant, is_int16, register, set_constant
from .elementwise import float32_agreeing_scale


class _Unary(OpDef):
    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def _f(self, node: Node, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [self._f(node, xs[0].astype(np.float64)).astype(np.float32)]


class _Table(TableLookup, _Unary):
    pass


class _FixedPointTable(_Table):
    """LOGISTIC / TANH: the table of TFLite Micro's fixed-point kernel. LiteRT's reference
    kernel builds a float table instead; when one entry differs at the input scale, the input
    is relabelled with the nearest scale where they agree whose int8 -> int8 requantization is
    the identity (attrs['input_scale']; the tflite target writes it as a QUANTIZE), so both
    runtimes compute the IR's table.

    16x8: TFLite's int16 LOGISTIC / TANH (the same code in TFLite Micro and LiteRT's reference
    kernels): an interpolated 256-entry sigmoid table (``intmath_activations.logistic_int16`` /
    ``tanh_int16``), output 2^-15, zero point 0, for any int16 input scale."""
    supports_int16 = True
    fixed_output_quant_int16 = ia.INT16_OUTPUT_QUANT

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s, zp = act_quant(graph, node.inputs[0])
        if is_int16(graph, node.inputs[0]):
            node.attrs.update(ia.int16_lut_params(self.name, s))
            return
        s2 = ia.agreeing_input_scale(self.name, s, zp)
        node.attrs["input_scale"] = s2 if np.float32(s2) != np.float32(s) else None
        fixed = ia.logistic_table if self.name == "sigmoid" else ia.tanh_table
        node.attrs["table"] = fixed(s2, zp)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        if xs[0].dtype == np.int16:
            kernel = ia.logistic_int16 if self.name == "sigmoid" else ia.tanh_int16
            return [kernel(xs[0], node.attrs["input_multiplier"], node.attrs["input_left_shift"])]
        return super().run_int(node, graph, xs)


@register
class Sigmoid(_FixedPointTable):
    name = "sigmoid"
    table = True
    pointwise = True
    in_place = "elementwise"
    fixed_output_quant = (1.0 / 256.0, -128)

    def _f(self, node, x):
        return 1.0 / (1.0 + np.exp(-x))

    def _table(self, node, graph):
        return ia.logistic_table(*act_quant(graph, node.inputs[0]))


@register
class Tanh(_FixedPointTable):
    name = "tanh"
    table = True
    pointwise = True
    in_place = "elementwise"
    fixed_output_quant = (1.0 / 128.0, 0)

    def _f(self, node, x):
        return np.tanh(x)

    def _table(self, node, graph):
        return ia.tanh_table(*act_quant(graph, node.inputs[0]))


@register
class HardSwish(_Table):
    name = "hardswish"
    table = True
    pointwise = True
    in_place = "elementwise"

    def _f(self, node, x):
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0

    def _table(self, node, graph):
        return ia.hard_swish_table(*act_quant(graph, node.inputs[0]), *act_quant(graph, node.outputs[0]))


_LIBM_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _torch_erf(x: np.ndarray) -> np.ndarray:
    return torch.erf(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def gelu_float(x: np.ndarray, approximate: str, erf=_torch_erf) -> np.ndarray:
    """GELU in float64. The float graph uses torch's erf (what the model computes, and fast on
    whole activations); the int8 table passes the C library's erf, as LiteRT's table does."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


@register
class Gelu(_Table):
    """attrs['approximate']: 'none' (erf) or 'tanh'. Table: dequantize each int8 input, GELU in
    float, quantize (round half away from zero) and saturate: LiteRT's int8 GELU table."""
    name = "gelu"
    attributes = (Attr("approximate", "str", "none"),)
    table = True
    pointwise = True
    in_place = "elementwise"

    def _f(self, node, x):
        return gelu_float(x, node.attrs.get("approximate", "none"))

    def _table(self, node, graph):
        approximate = node.attrs.get("approximate", "none")
        return ia.float_lut_int8(lambda x: gelu_float(x, approximate, _LIBM_ERF), *act_quant(graph, node.inputs[0]),
                                 *act_quant(graph, node.outputs[0]))


@register
class LeakyRelu(_Unary):
    """y = x (x >= 0), alpha * x (x < 0). TFLite's int8 LEAKY_RELU: two requantizations of
    x - zp_in, with multipliers computed in float32 (both TFLite Micro and LiteRT do)."""
    name = "leaky_relu"
    attributes = (Attr("alpha", "float"),)
    pointwise = True
    in_place = "elementwise"

    def _f(self, node, x):
        return np.where(x >= 0, x, node.attrs["alpha"] * x)

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s_in, zp_in = act_quant(graph, node.inputs[0])
        s_out, zp_out = act_quant(graph, node.outputs[0])
        alpha = np.float32(node.attrs["alpha"])
        a = node.attrs
        a["multiplier_alpha"], a["shift_alpha"] = quantize_multiplier(
            float(np.float32(s_in) * alpha / np.float32(s_out)))
        a["multiplier_identity"], a["shift_identity"] = quantize_multiplier(
            float(np.float32(s_in) / np.float32(s_out)))
        a["input_zero_point"], a["output_zero_point"] = zp_in, zp_out

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        x = xs[0].astype(np.int64) - a["input_zero_point"]
        pos = multiply_by_quantized_multiplier(x, a["multiplier_identity"], a["shift_identity"])
        neg = multiply_by_quantized_multiplier(x, a["multiplier_alpha"], a["shift_alpha"])
        y = np.where(x >= 0, pos, neg) + a["output_zero_point"]
        return [np.clip(y, -128, 127).astype(np.int8)]


@register
class Prelu(OpDef):
    """y = x (x >= 0), alpha * x (x < 0), alpha a constant broadcast against x (per channel).
    TFLite's int8 PRELU: alpha is int8 per tensor; identity branch M(s_in / s_out), alpha branch
    (x - zp)(alpha - zp_a) * M(s_in s_a / s_out). TFLite Micro derives the multipliers in
    double, LiteRT in float: the output and alpha scales are moved by float32 ulps to where the
    two agree."""
    name = "prelu"
    broadcasting = True
    in_place = "elementwise"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        return [graph.t(node.inputs[0]).shape]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, alpha = xs
        return [np.where(x >= 0, x, alpha * x).astype(np.float32, copy=False)]

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        s_in = np.float32(act_quant(graph, node.inputs[0])[0])
        s_out = np.float32(float32_agreeing_scale(scale, lambda s: [
            (np.float64(s_in) / s.astype(np.float64), s_in / s)]))
        t = graph.t(node.inputs[1])
        if t.quant is None:
            s_a, zp_a = constant_params(t.data.astype(np.float64))
            s_a = float32_agreeing_scale(s_a, lambda s: [
                (np.float64(s_in) * s.astype(np.float64) / np.float64(s_out), (s_in * s) / s_out)])
            set_constant(t, s_a, zp_a)
        return float(s_out), zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s_in, zp_in = act_quant(graph, node.inputs[0])
        s_a, zp_a = act_quant(graph, node.inputs[1])
        s_out, zp_out = act_quant(graph, node.outputs[0])
        a = node.attrs
        a["multiplier_1"], a["shift_1"] = quantize_multiplier(float(s_in) / float(s_out))
        a["multiplier_2"], a["shift_2"] = quantize_multiplier(float(s_in) * float(s_a) / float(s_out))
        a["input_zero_point"], a["alpha_zero_point"], a["output_zero_point"] = zp_in, zp_a, zp_out

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x, alpha = xs
        nd = x.ndim
        fits = alpha.ndim <= nd and all(a in (1, b) for a, b in zip(alpha.shape[::-1], x.shape[::-1]))
        if x.dtype != np.int8 or not fits or 256 * alpha.size >= x.size:
            return [self._kernel(node, x, alpha)]
        # elementwise in (x, alpha): the kernel on every int8 value against every alpha, looked up
        al = alpha.reshape((1,) * (nd - alpha.ndim) + alpha.shape)
        table = self._kernel(node, np.arange(-128, 128, dtype=np.int8).reshape((256,) + (1,) * nd), al[None])
        index = tuple(np.arange(n).reshape((1,) * d + (n,) + (1,) * (nd - d - 1)) if n > 1 else 0
                      for d, n in enumerate(al.shape))
        return [table[(x.astype(np.intp) + 128,) + index]]

    @staticmethod
    def _kernel(node: Node, x8: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        a = node.attrs
        x = x8.astype(np.int64) - a["input_zero_point"]
        al = alpha.astype(np.int64) - a["alpha_zero_point"]
        pos = multiply_by_quantized_multiplier(x, a["multiplier_1"], a["shift_1"])
        neg = multiply_by_quantized_multiplier(x * al, a["multiplier_2"], a["shift_2"])
        y = np.where(x >= 0, pos, neg) + a["output_zero_point"]
        return np.clip(y, -128, 127).astype(np.int8)


# --- GELU as ops with int16 kernels (for a pass to call; not used by the pipeline) ----------

GELU_TANH_C = math.sqrt(2.0 / math.pi)
GELU_TANH_K = 0.044715


def gelu_tanh_form(graph: Graph, node: Node) -> list[Node]:
    """The nodes computing GELU's tanh form, 0.5 x + 0.5 x tanh(c x + c k x^3), from ops that
    all have 16x8 kernels (mul with constants, mul and add of activations, tanh): what a pass
    can put in place of a ``gelu`` node that must run in int16, where the int8 table (exact on
    every target, the tflite one included, as a GATHER) does not apply. The caller replaces
    ``node`` with the returned nodes; tensors and constants are added to ``graph``.

    Float error against erf-GELU: at most 4.7e-4 (the tanh approximation itself)."""
    x, y = node.inputs[0], node.outputs[0]
    shape = graph.t(x).shape
    nodes: list[Node] = []

    def act(tag: str) -> str:
        return graph.add_tensor(Tensor(graph.unique_name(f"{y}_{tag}"), shape, "float32")).name

    def emit(op: str, inputs: list[str], out: str, tag: str) -> str:
        nodes.append(Node(op, inputs, [out], {"activation": None}, graph.unique_name(f"{node.name}_{tag}"),
                          node.module_path))
        return out

    def const(value: float, tag: str) -> str:
        return graph.add_constant(f"{y}_{tag}", np.array([value], dtype=np.float32).reshape((1,) * len(shape))).name

    x2 = emit("mul", [x, x], act("x2"), "square")
    x3 = emit("mul", [x2, x], act("x3"), "cube")
    cubic = emit("mul", [x3, const(GELU_TANH_C * GELU_TANH_K, "ck")], act("ck_x3"), "scale_cube")
    linear = emit("mul", [x, const(GELU_TANH_C, "c")], act("c_x"), "scale_x")
    u = emit("add", [linear, cubic], act("u"), "inner")
    t = act("tanh")
    nodes.append(Node("tanh", [u], [t], {}, graph.unique_name(f"{node.name}_tanh"), node.module_path))
    half_x = emit("mul", [x, const(0.5, "half")], act("half_x"), "half")
    tail = emit("mul", [half_x, t], act("half_x_tanh"), "gate")
    emit("add", [half_x, tail], y, "sum")
    return nodes
