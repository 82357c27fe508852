"""Data-movement ops with axes: concat, pad (constant), slice (strided), resize_nearest,
resize_bilinear.

Axes and per-dimension attributes refer to the graph's layout (``passes.to_nhwc`` remaps them).
``pad``, ``slice`` and ``resize_nearest`` keep the input's quantization (they only move or
replicate values; a pad value is quantized at it, saturating), and so does ``resize_bilinear``
(TFLite's kernel interpolates the raw int8 values). ``concat`` has its own output
quantization; inputs quantized differently are requantized to it first (TFLite's
CONCATENATION needs one quantization on all operands: the tflite target puts an int8 -> int8
QUANTIZE in front of them, the same arithmetic)."""
from __future__ import annotations

import numpy as np
import torch

from ..ir import Graph, Node
from ..quant import quantize_value
from .base import Attr, OpDef, act_quant, from_nchw, register, set_constant, to_nchw
from .elementwise import apply_requant, requant_params


@register
class Concat(OpDef):
    """attrs['axis']: the concatenation axis (non-negative)."""
    name = "concat"
    attributes = (Attr("axis", "axis"),)

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        shapes = [graph.t(n).shape for n in node.inputs]
        ax = node.attrs["axis"]
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return [tuple(out)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.concatenate(_same_batch(xs), axis=node.attrs["axis"]).astype(np.float32)]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        for n in node.inputs:          # a constant part (a class token) is stored at the output's quantization
            t = graph.t(n)
            if t.is_constant and t.quant is None:
                set_constant(t, *act_quant(graph, node.outputs[0]))
        node.attrs["requant"] = [requant_params(graph, n, node.outputs[0]) for n in node.inputs]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        parts = [apply_requant(x, p) for x, p in zip(xs, node.attrs["requant"])]
        return [np.concatenate(_same_batch(parts), axis=node.attrs["axis"]).astype(np.int8)]


def _same_batch(xs: list[np.ndarray]) -> list[np.ndarray]:
    """Constant inputs (batch 1, e.g. a class token) repeated over the activations' batch."""
    n = max(x.shape[0] for x in xs)
    return [np.broadcast_to(x, (n, *x.shape[1:])) if x.shape[0] != n else x for x in xs]


def _pad(x: np.ndarray, node: Node, value: np.generic) -> np.ndarray:
    pads = [tuple(p) for p in node.attrs["pads"]]
    mode = node.attrs.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, pads, constant_values=value)
    return np.pad(x, pads, mode="reflect" if mode == "reflect" else "edge")


@register
class Pad(OpDef):
    """attrs['pads']: [(before, after)] per dimension (non-negative); attrs['mode']: "constant"
    (attrs['value'], the float fill value), "reflect" (mirror without repeating the edge) or
    "replicate" (repeat the edge)."""
    name = "pad"
    lossless = True
    attributes = (Attr("pads", "per_dim"), Attr("value", "float", 0.0), Attr("mode", "str", "constant"))
    same_quant_as_input = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        return [tuple(d + a + b for d, (a, b) in zip(x, node.attrs["pads"]))]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [_pad(xs[0], node, np.float32(node.attrs.get("value", 0.0)))]

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        s, zp = act_quant(graph, node.inputs[0])
        node.attrs["pad_value"] = int(np.clip(quantize_value(node.attrs.get("value", 0.0), s, zp), -128, 127))

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [_pad(xs[0], node, np.array(node.attrs["pad_value"], dtype=xs[0].dtype))]


@register
class Slice(OpDef):
    """attrs['begin'], attrs['end'], attrs['strides']: one each per dimension, normalised
    (0 <= begin < end <= size, stride >= 1). Copies values, so int16 too (an LSTM's gates)."""
    name = "slice"
    lossless = True
    attributes = (Attr("begin", "per_dim"), Attr("end", "per_dim"), Attr("strides", "per_dim"))
    in_place = "prefix"
    same_quant_as_input = True
    layout_only = True
    supports_int16 = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        a = node.attrs
        return [tuple(len(range(b, e, s)) for b, e, s in zip(a["begin"], a["end"], a["strides"]))]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        a = node.attrs
        idx = tuple(slice(b if i else None, e if i else None, s if i else None)
                    for i, (b, e, s) in enumerate(zip(a["begin"], a["end"], a["strides"])))
        return [np.ascontiguousarray(xs[0][idx])]

    run_int = run_float


def nearest_indices(in_size: int, out_size: int, scale: float | None) -> np.ndarray:
    """Source index of every output index for torch's 'nearest' (computed by torch itself)."""
    src = torch.arange(in_size, dtype=torch.float32).reshape(1, 1, in_size)
    kw = {"scale_factor": scale} if scale is not None else {"size": out_size}
    idx = torch.nn.functional.interpolate(src, mode="nearest", **kw)
    return idx.reshape(-1).numpy().astype(np.int64)


@register
class ResizeNearest(OpDef):
    """torch's nearest upsampling of the spatial axes. attrs['size']: (OH, OW);
    attrs['scales']: torch's scale factors (or None when a size was given)."""
    name = "resize_nearest"
    lossless = True
    attributes = (Attr("size", "pair"), Attr("scales", "any", None))
    same_quant_as_input = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        oh, ow = node.attrs["size"]
        return [(x[0], oh, ow, x[3]) if graph.layout == "nhwc" else (x[0], x[1], oh, ow)]

    def indices(self, node: Node, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
        x = graph.t(node.inputs[0]).shape
        h, w = (x[1], x[2]) if graph.layout == "nhwc" else (x[2], x[3])
        sc = node.attrs.get("scales") or (None, None)
        return (nearest_indices(h, node.attrs["size"][0], sc[0]),
                nearest_indices(w, node.attrs["size"][1], sc[1]))

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        ih, iw = self.indices(node, graph)
        if graph.layout == "nhwc":
            return [np.ascontiguousarray(xs[0][:, ih][:, :, iw])]
        return [np.ascontiguousarray(xs[0][:, :, ih][:, :, :, iw])]

    run_int = run_float


def bilinear_source(in_size: int, out_size: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TFLite's integer RESIZE_BILINEAR source positions along one axis (``ResizeBilinearInteger``,
    ``ComputeInterpolationValuesInteger``): (lower index, upper index, position - 1024 * lower),
    positions in 1/1024 pixel. align_corners=False is TFLite's half_pixel_centers."""
    if align_corners and out_size > 1:
        scale_10 = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale_10 = ((1 << 10) * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64)
    scaled = v * scale_10 if align_corners else v * scale_10 + scale_10 // 2 - (1 << 9)
    trunc = lambda a: np.where(a < 0, -((-a) // 1024), a // 1024)  # noqa: E731 - C int division
    lower = np.maximum(trunc(scaled), 0)
    upper = np.minimum(trunc(scaled + 1023), in_size - 1)
    return lower, upper, scaled - 1024 * lower


@register
class ResizeBilinear(OpDef):
    """Bilinear upsampling of the spatial axes. attrs['size']: (OH, OW); attrs['align_corners'].

    Float: torch's ``interpolate(mode='bilinear')`` (align_corners=False is the half-pixel rule
    with source positions clamped at 0; the front end only accepts scale factors equal to
    out/in, so torch's and TFLite's scales agree). Integer: TFLite's RESIZE_BILINEAR int8
    reference kernel (``ResizeBilinearInteger``): source positions in 1/1024 pixel from a scale
    rounded to 10 fractional bits, the four raw int8 neighbours weighted in int64 (weights sum to
    2^20) and rounded half away from zero. Where 1024 * in/out (align_corners: 1024 * (in-1) /
    (out-1)) is not an integer (e.g. 3x, or align_corners 4 -> 8), TFLite's positions differ
    from torch's by up to out * 2^-11 pixel; 2x/4x upsampling without align_corners is exact.
    Output quantization is the input's (the kernel works on raw values)."""
    name = "resize_bilinear"
    attributes = (Attr("size", "pair"), Attr("align_corners", "bool", False))
    same_quant_as_input = True

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        x = graph.t(node.inputs[0]).shape
        oh, ow = node.attrs["size"]
        return [(x[0], oh, ow, x[3]) if graph.layout == "nhwc" else (x[0], x[1], oh, ow)]

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(to_nchw(xs[0], graph)))
        y = torch.nn.functional.interpolate(x, size=tuple(node.attrs["size"]), mode="bilinear",
                                            align_corners=bool(node.attrs["align_corners"]))
        return [from_nchw(y.numpy(), graph)]

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        x = to_nchw(xs[0], graph).astype(np.int64)
        (oh, ow), ac = node.attrs["size"], bool(node.attrs["align_corners"])
        y0, y1, fy = bilinear_source(x.shape[2], oh, ac)
        x0, x1, fx = bilinear_source(x.shape[3], ow, ac)
        fy, fx = fy[:, None], fx[None, :]
        rows0, rows1 = x[:, :, y0], x[:, :, y1]
        acc = (rows0[..., x0] * ((1024 - fy) * (1024 - fx)) + rows1[..., x0] * (fy * (1024 - fx))
               + rows0[..., x1] * ((1024 - fy) * fx) + rows1[..., x1] * (fy * fx))
        acc = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
        out = np.where(acc < 0, -((-acc) >> 20), acc >> 20)     # C division: toward zero
        return [from_nchw(out.astype(np.int8), graph)]
