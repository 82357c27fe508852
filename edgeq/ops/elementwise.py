"""Elementwise binary ops with numpy broadcasting: mul, sub, maximum, minimum (add is in add.py).

Either operand may be a constant (quantized per tensor from its own min/max at quantization
time). Integer algorithms are TFLite's int8 reference kernels:

* ``mul``: ``MultiplyByQuantizedMultiplier((x1 - zp1) * (x2 - zp2), M(s1 s2 / s_out)) + zp_out``.
  TFLite Micro derives M in double, LiteRT in float; ``adjust_output_quant`` nudges the output
  scale by a few float32 ulps to one where both derivations give the same (M, shift), so the
  op is bit-exact in both runtimes. 16x8: the same algorithm on int16 values (zero points 0,
  TFLite's int16 MUL); a constant operand is then int16 symmetric.
* ``sub``: the ADD algorithm (both inputs << 20, rescaled to 2 * max input scale, summed,
  requantized) with the second input negated. TFLite's own SUB derives its multipliers in
  float in TFLite Micro and in double in LiteRT, so the tflite target lowers sub as an exact
  negation (MUL by -1 into a tensor with zero point -zp-1) followed by ADD. 16x8: int16 zero
  points must be 0, so the negation saturates (-(-32768) is 32767, as TFLite's int16 MUL by -1
  gives), then int16 ADD (left shift 15).
* ``maximum`` / ``minimum``: each input is requantized to the output quantization (TFLite's
  int8 -> int8 QUANTIZE, skipped when it already has it), then compared; TFLite's
  MAXIMUM/MINIMUM need one quantization on all operands.
"""
from __future__ import annotations

import numpy as np

from ..intmath import multiply_by_quantized_multiplier, quantize_multiplier
from ..quant import constant_params, int16_scale
from ..ir import Graph, Node
from .add import add_int, binary_affine, set_add_params
from .base import (ACTIVATION, OpDef, act_quant, activation_range, apply_float_activation, quantize_constant_operand, register,
                   runs_wide, set_constant)
from .requantize import requantize_int, rescale_params


def operand_quant(graph: Graph, name: str) -> tuple[float, int]:
    return act_quant(graph, name)


def float32_agreeing_scale(scale: float, ratios, max_steps: int = 1 << 16) -> float:
    """The float32 nearest ``scale`` (searching outwards by ulps) for which every real
    multiplier ``ratios(s)`` -> (double, float32) pair quantizes to the same (M, shift).

    ``ratios(s)`` takes an array of float32 candidate scales and returns a list of
    (double value array, float32 value array) pairs.

    Near ``scale`` there may be none: for MUL the float32 product s1 * s2 carries a rounding
    error no choice of s_out removes when the quotient's significand is large (measured: 14% of
    random scale triples). Coarser scales are then tried, up to 2x (the quotient's significand
    falls towards 1, where a float32 ulp covers the product's error); ValueError if none."""
    found = _nearest_agreeing(scale, ratios, max_steps)
    for k in range(1, 257):
        if found is not None:
            return found
        found = _nearest_agreeing(float(np.float32(scale) * np.float32(1 + k / 256)), ratios, 256)
    if found is not None:
        return found
    raise ValueError(f"no float32 scale within 2x of {scale} makes TFLite Micro's (double) and "
                     "LiteRT's (float) multipliers agree")


def _nearest_agreeing(scale: float, ratios, max_steps: int) -> float | None:  # noqa: ANN001
    base = np.float32(scale).view(np.int32)
    steps = np.arange(1, max_steps + 1, dtype=np.int32)
    offsets = np.concatenate([[0], np.stack([steps, -steps], axis=1).reshape(-1)])
    for chunk in np.array_split(offsets, max(1, offsets.size // 4096)):
        cand = (base + chunk).astype(np.int32).view(np.float32)
        ok = np.ones(cand.size, dtype=bool)
        for dbl, flt in ratios(cand):
            ok &= _same_q31(np.asarray(dbl, np.float64), np.asarray(flt, np.float32).astype(np.float64))
        if ok.any():
            return float(cand[int(np.argmax(ok))])
    return None


def _same_q31(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: QuantizeMultiplier(a) == QuantizeMultiplier(b)."""
    qa, ea = np.frexp(a)
    qb, eb = np.frexp(b)
    ma = np.floor(qa * 2.0 ** 31 + 0.5)
    mb = np.floor(qb * 2.0 ** 31 + 0.5)
    ea = np.where(ma == 2.0 ** 31, ea + 1, ea)
    ma = np.where(ma == 2.0 ** 31, 2.0 ** 30, ma)
    eb = np.where(mb == 2.0 ** 31, eb + 1, eb)
    mb = np.where(mb == 2.0 ** 31, 2.0 ** 30, mb)
    return (ma == mb) & (ea == eb)


class _Binary(OpDef):
    attributes = (ACTIVATION,)
    broadcasting = True
    in_place = "elementwise"

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a, b = (graph.t(n).shape for n in node.inputs)
        return [tuple(np.broadcast_shapes(a, b))]

    def _f(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [apply_float_activation(node, self._f(xs[0], xs[1]).astype(np.float32))]


@register
class Mul(_Binary):
    name = "mul"
    fusable_activation = True
    supports_int16 = True

    def as_affine(self, node: Node, graph: Graph) -> tuple[str, np.ndarray | None, np.ndarray | None] | None:
        return binary_affine(graph, node, scale=True)

    def _f(self, a, b):
        return a * b

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        """An output scale where both runtimes' multipliers agree. With a constant operand its
        scale is moved first, by float32 ulps, to one where such an output scale lies within a
        few ulps of ``scale`` (the product s1 * s2 then rounds to float32 nearly exactly)."""
        wide = runs_wide(graph, node)
        for n in node.inputs:
            if graph.t(n).is_constant and graph.t(n).quant is None:
                _agreeing_constant(graph, n, node, scale, wide)
            quantize_constant_operand(graph, n, wide=wide)
        s1, s2 = (np.float32(operand_quant(graph, n)[0]) for n in node.inputs)
        return float32_agreeing_scale(scale, _product_ratios(s1, s2)), zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s1, zp1 = operand_quant(graph, node.inputs[0])
        s2, zp2 = operand_quant(graph, node.inputs[1])
        s_out, zp_out = act_quant(graph, node.outputs[0])
        a = node.attrs
        a["multiplier"], a["shift"] = quantize_multiplier(float(s1) * float(s2) / float(s_out))
        a["input1_zero_point"], a["input2_zero_point"], a["output_zero_point"] = zp1, zp2, zp_out
        a["act_min"], a["act_max"] = activation_range(node, graph, node.outputs[0])

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        prod = (xs[0].astype(np.int64) - a["input1_zero_point"]) * (xs[1].astype(np.int64) - a["input2_zero_point"])
        out = multiply_by_quantized_multiplier(prod, a["multiplier"], a["shift"]) + a["output_zero_point"]
        return [np.clip(out, a["act_min"], a["act_max"]).astype(graph.t(node.outputs[0]).dtype)]

    def macs(self, node: Node, graph: Graph) -> int:
        return graph.t(node.outputs[0]).size


@register
class Sub(_Binary):
    name = "sub"
    fusable_activation = True
    supports_int16 = True

    def int16_capable(self, node: Node, graph: Graph) -> bool:
        """16x8 for two activations (broadcasting allowed: TFLite Micro's and LiteRT's int16
        ADD broadcast exactly alike, measured); a constant operand stays int8."""
        a, b = (graph.t(n) for n in node.inputs)
        return not a.is_constant and not b.is_constant

    def as_affine(self, node: Node, graph: Graph) -> tuple[str, np.ndarray | None, np.ndarray | None] | None:
        return binary_affine(graph, node, shift_sign=-1.0)

    def _f(self, a, b):
        return a - b

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        for n in node.inputs:
            quantize_constant_operand(graph, n)
        set_add_params(node, graph)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        if xs[1].dtype == np.int16:      # saturating negation, then int16 ADD
            return [add_int(node.attrs, xs[0], np.clip(-xs[1].astype(np.int64), -32768, 32767).astype(np.int16))]
        return [add_int(node.attrs, xs[0], xs[1], sign2=-1)]


def _product_ratios(s1: np.float32, s2: np.float32):  # noqa: ANN202
    """MUL's multiplier s1 s2 / s_out: (TFLite Micro's double, LiteRT's float32) for candidates."""
    def ratios(s: np.ndarray) -> list:
        return [(np.float64(s1) * np.float64(s2) / s.astype(np.float64), (s1 * s2) / s)]
    return ratios


def _agreeing_constant(graph: Graph, name: str, node: Node, out_scale: float, wide: bool) -> None:
    """Quantize MUL's constant operand ``name`` at the float32 scale nearest its own for which an
    agreeing output scale exists within 64 ulps of ``out_scale`` (kept as is when none does
    within 4096 ulps: the output scale then moves instead)."""
    other = next(n for n in node.inputs if n != name)
    s_other = np.float32(operand_quant(graph, other)[0])
    data = graph.t(name).data.astype(np.float64)
    sc, zp = (int16_scale(float(data.min()), float(data.max())), 0) if wide else constant_params(data)
    base = np.float32(sc).view(np.int32)
    for step in range(4097):
        for cand in ((base + np.int32(step)).view(np.float32), (base - np.int32(step)).view(np.float32)):
            if _nearest_agreeing(out_scale, _product_ratios(s_other, cand), 64) is not None:
                set_constant(graph.t(name), float(cand), zp, "int16" if wide else "int8")
                return


def requant_params(graph: Graph, src: str, dst: str) -> dict | None:
    """(multiplier, shift, zero points) to bring ``src`` to ``dst``'s quantization, or None
    when they already share it."""
    s_in, zp_in = act_quant(graph, src)
    s_out, zp_out = act_quant(graph, dst)
    if np.float32(s_in) == np.float32(s_out) and zp_in == zp_out:
        return None
    return rescale_params(graph, src, dst)


def apply_requant(x: np.ndarray, p: dict | None) -> np.ndarray:
    """TFLite's int8 -> int8 QUANTIZE (saturating), or the values as they are when ``p`` is None."""
    if p is None:
        return x.astype(np.int64)
    return requantize_int(x, p["multiplier"], p["shift"], p["input_zero_point"], p["output_zero_point"],
                          "int8").astype(np.int64)


class _MinMax(_Binary):
    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        for n in node.inputs:
            t = graph.t(n)
            if t.is_constant and t.quant is None:   # a constant goes straight to the output quantization
                set_constant(t, *act_quant(graph, node.outputs[0]))
        node.attrs["requant"] = [requant_params(graph, n, node.outputs[0]) for n in node.inputs]
        node.attrs["act_min"], node.attrs["act_max"] = activation_range(node, graph, node.outputs[0])

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a, b = (apply_requant(x, p) for x, p in zip(xs, node.attrs["requant"]))
        y = self._f(a, b)
        return [np.clip(y, node.attrs["act_min"], node.attrs["act_max"]).astype(np.int8)]


@register
class Maximum(_MinMax):
    name = "maximum"

    def _f(self, a, b):
        return np.maximum(a, b)


@register
class Minimum(_MinMax):
    name = "minimum"

    def _f(self, a, b):
        return np.minimum(a, b)
