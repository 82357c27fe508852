"""C code generation: a quantized NHWC graph -> NAME.h, NAME.c, NAME_weights.c, kernels, README.

The generated code calls one integer kernel per layer (``kernels/``, copied verbatim, only the
ones the model uses) with a ``static const`` parameter struct holding that layer's constants
(shapes, zero points, multipliers, shifts) exactly as the op's ``quantize()`` computed them.
Activations live in one static arena laid out by :mod:`.planner`; graph inputs and outputs
live in the caller's buffers.  Output bytes depend only on the graph and the options.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Graph, Node
from ..base import atomic_write_text
from ...memory_plan import MemoryPlan, plan_memory

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_HEADER = "edgeq_kernels.h"

#: IR op -> kernel source file (``add`` with broadcasting uses ``edgeq_add_broadcast.c``).
KERNEL_FILES = {
    "conv2d": "edgeq_conv2d.c",
    "depthwise_conv2d": "edgeq_depthwise_conv2d.c",
    "linear": "edgeq_fully_connected.c",
    "add": "edgeq_add.c",
    "clamp": "edgeq_clamp.c",
    "max_pool2d": "edgeq_max_pool2d.c",
    "avg_pool2d": "edgeq_avg_pool2d.c",
    "transpose": "edgeq_transpose.c",
    "reshape": "edgeq_copy.c",
    "softmax": "edgeq_softmax.c",
    "sigmoid": "edgeq_lookup.c",
    "tanh": "edgeq_lookup.c",
    "hardswish": "edgeq_lookup.c",
    "gelu": "edgeq_lookup.c",
    "sub": "edgeq_sub.c",
    "mul": "edgeq_mul.c",
    "maximum": "edgeq_maximum.c",
    "minimum": "edgeq_minimum.c",
    "leaky_relu": "edgeq_leaky_relu.c",
    "prelu": "edgeq_prelu.c",
    "concat": "edgeq_concat.c",
    "pad": "edgeq_pad.c",
    "slice": "edgeq_slice.c",
    "resize_nearest": "edgeq_resize_nearest.c",
    "resize_bilinear": "edgeq_resize_bilinear.c",
    "conv_transpose2d": "edgeq_conv_transpose2d.c",
    "log_softmax": "edgeq_log_softmax.c",
    "mean": "edgeq_mean.c",
    "argmax": "edgeq_argmax.c",
}
#: 16x8 mode (int16 activations): IR op -> kernel source file of its int16 kernel, in
#: ``kernels/s16/`` (``reshape`` copies bytes with the int8 ``edgeq_copy.c``).  Emitted next to
#: the other kernels (one flat directory).
KERNEL_DIR_S16 = KERNEL_DIR / "s16"
KERNEL_FILES_S16 = {
    "conv2d": "edgeq_conv2d_s16.c",
    "depthwise_conv2d": "edgeq_depthwise_conv2d_s16.c",
    "linear": "edgeq_fully_connected_s16.c",
    "add": "edgeq_add_s16.c",
    "max_pool2d": "edgeq_max_pool2d_s16.c",
    "avg_pool2d": "edgeq_avg_pool2d_s16.c",
    "transpose": "edgeq_transpose_s16.c",
    "reshape": "edgeq_copy.c",
    "requantize": "edgeq_requantize.c",
}
#: Ops whose kernel returns a status (non-zero: the input hit a case TFLite's kernel rejects).
STATUS_OPS = ("softmax", "log_softmax")
#: Ops with an int32 output (argmax indices), written as little-endian bytes.
INT32_OUTPUT_OPS = ("argmax",)
#: Ops computed by a 256-entry lookup table (``node.attrs['table']``, built by the op's quantize()).
TABLE_OPS = ("sigmoid", "tanh", "hardswish", "gelu")
SUPPORTED_OPS = tuple(sorted(set(KERNEL_FILES) | {"depthwise_conv2d"}))
#: Ops the C target runs with int16 activations (the int8 <-> int16 ``requantize`` included).
INT16_OPS = tuple(sorted(KERNEL_FILES_S16))

_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
}


def c_identifier(text: str, default: str = "model") -> str:
    """A C identifier from ``text``: other characters become '_', no leading digit, no keyword."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(text)).strip("_") or default
    if ident[0].isdigit():
        ident = f"{default}_{ident}"
    if ident in _C_KEYWORDS:
        ident = f"{ident}_"
    return ident


def model_name(options: dict | None) -> str:
    return c_identifier((options or {}).get("name", "model"))


def _comment(text: str) -> str:
    """Text safe inside a C block comment (ASCII, no comment terminators)."""
    text = str(text).encode("ascii", "replace").decode("ascii")
    return text.replace("*/", "* /").replace("/*", "/ *")


def _c_int(v: int) -> str:
    v = int(v)
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def _c_float(v: float) -> str:
    """A float literal that round-trips the float32 value."""
    f = float(np.float32(v))
    text = np.format_float_positional(np.float32(f), unique=True, trim="0") \
        if 1e-4 <= abs(f) < 1e7 or f == 0.0 else np.format_float_scientific(np.float32(f), unique=True)
    if "." not in text and "e" not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text + "f"


#: Transpose, slice, pad and the broadcasting kernels take at most this many dimensions
#: (EDGEQ_MAX_DIMS in edgeq_kernels.h), counted after merging dimensions.
MAX_DIMS = 6


def _strides(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Row-major element strides of ``shape``."""
    out, acc = [0] * len(shape), 1
    for d in reversed(range(len(shape))):
        out[d] = acc
        acc *= int(shape[d])
    return out


def collapse_dims(shape: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge dimensions of a strided loop nest without changing the addresses it visits.

    ``shape``: the iteration shape; ``strides``: one stride list per operand (element strides,
    0 for a broadcast).  Size-1 dimensions are dropped and dimension d is merged into d + 1
    when every operand has stride[d] == stride[d + 1] * shape[d + 1], so that the innermost
    dimension is as long as possible.  At least one dimension is kept."""
    dims = [(int(n), [int(s[d]) for s in strides]) for d, n in enumerate(shape) if int(n) != 1]
    merged: list[tuple[int, list[int]]] = []
    for n, st in dims:
        if merged and all(sp == si * n for sp, si in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * n, st)
        else:
            merged.append((n, st))
    if not merged:
        merged = [(1, [0] * len(strides))]
    return [n for n, _ in merged], [[st[k] for _, st in merged] for k in range(len(strides))]


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _array(ctype: str, name: str, values: np.ndarray, per_line: int) -> str:
    vals = [_c_int(v) for v in np.asarray(values).reshape(-1).tolist()]
    width = max((len(v) for v in vals), default=1)
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append("    " + ", ".join(v.rjust(width) for v in vals[i:i + per_line]) + ",")
    body = "\n".join(lines)
    return f"const {ctype} {name}[{len(vals)}] = {{\n{body}\n}};\n"


class _Names:
    """Unique identifiers within one namespace."""

    def __init__(self, reserved: set[str] | None = None) -> None:
        self.used: set[str] = set(reserved or ())

    def get(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name


@dataclass
class _Layer:
    index: int
    node: Node
    kernel_file: str | None
    comment: str
    params: str | None = None        # static const struct definition
    call: str = ""
    arrays: list[tuple[str, str, str]] = field(default_factory=list)  # (extern decl, definition, comment)


@dataclass
class CModel:
    """Everything generated for one model (texts, plus facts the target reports)."""
    name: str
    files: dict[str, str]
    plan: MemoryPlan
    kernel_files: list[str]
    weight_bytes: int
    input_size: int
    output_size: int


class _Emitter:
    def __init__(self, graph: Graph, name: str, plan: MemoryPlan, trace: bool = False) -> None:
        self.g = graph
        self.trace = trace
        self.name = name
        self.upper = name.upper()
        self.plan = plan
        # one namespace for every file-scope identifier of NAME.c
        self.ids = _Names({"arena", "input", "output", "status", f"{name}_arena", f"{name}_invoke"})
        self.used_regions: set[str] = set()
        self.offset_const: dict[int, str] = {}   # buffer id -> enum name
        self.weight_symbol: dict[tuple[str, str], str] = {}
        self.weight_bytes = 0
        self.layers: list[_Layer] = []
        self.multi_in = len(graph.inputs) > 1
        self.multi_out = len(graph.outputs) > 1
        wide = any(graph.t(n).dtype == "int16" for n in graph.activations())
        #: "int8", or "int8 / 16x8" when some layers have int16 activations
        self.kind = "int8 / 16x8 mixed-precision" if wide else "int8"

    # -- tensors --------------------------------------------------------------------
    def ptr(self, tensor: str) -> str:
        t = self.plan.tensors[tensor]
        self.used_regions.add(t.region)
        if t.region == "arena":
            if t.buffer not in self.offset_const:
                base = "OFFSET_" + c_identifier(tensor, "tensor").upper()
                self.offset_const[t.buffer] = self.ids.get(base)
            return f"arena + {self.offset_const[t.buffer]}"
        if t.region == "input":
            if not self.multi_in or t.offset == 0:
                return "input" if t.offset == 0 else f"input + {t.offset}"
            idx = self.plan.input_offsets.index(t.offset)
            return f"input + {self.upper}_INPUT{idx}_OFFSET"
        if not self.multi_out or t.offset == 0:
            return "output" if t.offset == 0 else f"output + {t.offset}"
        idx = self.plan.output_offsets.index(t.offset)
        return f"output + {self.upper}_OUTPUT{idx}_OFFSET"

    def is16(self, tensor: str) -> bool:
        return self.g.t(tensor).dtype == "int16"

    def tptr(self, tensor: str, const: bool = False) -> str:
        """Pointer expression of an activation with its element type: ``ptr`` (bytes) for int8
        (and int32 indices, written as bytes), cast to ``int16_t *`` for an int16 tensor."""
        p = self.ptr(tensor)
        if not self.is16(tensor):
            return p
        return f"({'const ' if const else ''}int16_t *)({p})"

    def nbytes(self, tensor: str) -> int:
        """Bytes of an activation (int8: its element count; argmax's int32 indices: 4 each)."""
        return self.plan.tensors[tensor].size

    def where(self, tensor: str) -> str:
        t = self.plan.tensors[tensor]
        return f"{t.region}+{t.offset}"

    # -- constants ------------------------------------------------------------------
    def const_array(self, layer: _Layer, role: str, ctype: str, values: np.ndarray, source: str,
                    per_line: int, note: str) -> str:
        key = (source, role)
        if key in self.weight_symbol:
            return self.weight_symbol[key]
        sym = self.ids.get(f"{self.name}_{c_identifier(layer.node.name, 'layer')}_{role}")
        self.weight_symbol[key] = sym
        values = np.asarray(values)
        n = int(values.size)
        itemsize = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}[ctype]
        self.weight_bytes += n * itemsize
        layer.arrays.append((f"extern const {ctype} {sym}[{n}];",
                             _array(ctype, sym, values, per_line), note))
        return sym

    def requant_arrays(self, layer: _Layer, out_channels: int) -> tuple[str, str]:
        a = layer.node.attrs
        mult = np.asarray(a["multiplier"], dtype=np.int64).reshape(-1)
        shift = np.asarray(a["shift"], dtype=np.int64).reshape(-1)
        if mult.size == 1 and out_channels > 1:     # per-tensor weights: same numbers per channel
            mult = np.repeat(mult, out_channels)
            shift = np.repeat(shift, out_channels)
        if mult.size != out_channels:
            raise UnsupportedOpError(f"{layer.node.where()}: {mult.size} multipliers for "
                                     f"{out_channels} output channels")
        if shift.min(initial=0) < -128 or shift.max(initial=0) > 127:
            raise UnsupportedOpError(f"{layer.node.where()}: shift out of int8 range")
        m = self.const_array(layer, "multiplier", "int32_t", mult, layer.node.name, 6,
                             "Q31 requantization multipliers, one per output channel")
        s = self.const_array(layer, "shift", "int8_t", shift, layer.node.name, 16,
                             "power-of-two exponents, one per output channel")
        return m, s

    def param_name(self, layer: _Layer, suffix: str = "") -> str:
        base = c_identifier(layer.node.name, "layer") + suffix
        if base.lower().startswith("edgeq") or base.isupper():
            base = f"layer_{base}"
        return self.ids.get(base)

    @staticmethod
    def _fields(fields: list[tuple[str, Any]], indent: str) -> list[str]:
        """Designated initializers; a value that is a list of (field, value) pairs is a
        nested struct, a list of numbers an array."""
        width = max(len(f) for f, _ in fields)
        lines = []
        for f, v in fields:
            if isinstance(v, list) and v and isinstance(v[0], tuple):
                lines.append(f"{indent}.{f.ljust(width)} = {{")
                lines.extend(_Emitter._fields(v, indent + "    "))
                lines.append(f"{indent}}},")
                continue
            if isinstance(v, (list, tuple)):
                v = "{" + ", ".join(_c_int(x) for x in v) + "}"
            elif isinstance(v, (int, np.integer)):
                v = _c_int(v)
            lines.append(f"{indent}.{f.ljust(width)} = {v},")
        return lines

    def params(self, layer: _Layer, ctype: str, fields: list[tuple[str, Any]], suffix: str = "") -> str:
        """A ``static const`` parameter struct of this layer (appended to its definitions)."""
        pname = self.param_name(layer, suffix)
        lines = [f"static const {ctype} {pname} = {{", *self._fields(fields, "    "), "};"]
        text = "\n".join(lines)
        layer.params = text if not layer.params else f"{layer.params}\n{text}"
        return pname

    def operand(self, layer: _Layer, index: int) -> str:
        """Pointer expression of input ``index``: an activation, or a constant int8 array."""
        node, g = layer.node, self.g
        n = node.inputs[index]
        t = g.t(n)
        if not t.is_constant:
            return self.ptr(n)
        if t.dtype != "int8" or t.data is None:
            raise UnsupportedOpError(f"{node.op} at {node.where()}: constant operand {n} is {t.dtype}; "
                                     f"the C target takes int8 constant operands only")
        return self.const_array(layer, f"operand{index + 1}", "int8_t", t.data.astype(np.int64), n, 16,
                                f"constant operand {index + 1}, {_shape(t.shape)}")

    def broadcast(self, layer: _Layer) -> list[tuple[str, Any]]:
        """``edgeq_broadcast_shape`` fields of a binary op (inputs 0 and 1 against the output)."""
        node, g = layer.node, self.g
        so = list(g.t(node.outputs[0]).shape)

        def strides(shape: tuple[int, ...]) -> list[int]:
            shape = (1,) * (len(so) - len(shape)) + tuple(shape)
            return [0 if d == 1 else s for d, s in zip(shape, _strides(shape))]

        shape, (s1, s2) = collapse_dims(so, [strides(g.t(node.inputs[0]).shape),
                                             strides(g.t(node.inputs[1]).shape)])
        if len(shape) > MAX_DIMS:
            raise UnsupportedOpError(f"{node.op} at {node.where()} broadcasts over {len(shape)} dimensions; "
                                     f"the C kernels take at most {MAX_DIMS} (see `edgeq targets --ops`)")
        pad = [0] * (MAX_DIMS - len(shape))
        return [("dims", len(shape)), ("output_shape", shape + [1] * len(pad)),
                ("input1_strides", s1 + pad), ("input2_strides", s2 + pad)]

    @staticmethod
    def rescale_fields(requant: dict | None) -> list[tuple[str, Any]]:
        """``edgeq_rescale_params`` fields from an op's ``requant`` entry (None: same quantization)."""
        if requant is None:
            return [("rescale", 0), ("input_offset", 0), ("multiplier", 0), ("shift", 0), ("output_offset", 0)]
        return [("rescale", 1), ("input_offset", -int(requant["input_zero_point"])),
                ("multiplier", requant["multiplier"]), ("shift", requant["shift"]),
                ("output_offset", requant["output_zero_point"])]

    # -- ops ------------------------------------------------------------------------
    def layer(self, index: int, node: Node) -> _Layer:
        g = self.g
        handler: Callable[[_Layer], None] | None = getattr(self, f"_op_{node.op}", None)
        if handler is None:
            raise UnsupportedOpError(f"the C target has no kernel for op '{node.op}' at {node.where()} "
                                     f"(see `edgeq targets --ops` for every target's ops; C lowers: "
                                     f"{', '.join(SUPPORTED_OPS)})")
        ins = [_shape(g.t(n).shape) for n in node.inputs if not g.t(n).is_constant]
        outs = [_shape(g.t(n).shape) for n in node.outputs]
        module = node.module_path or "<top level>"
        comment = (f"Layer {index}: {node.name} (torch module {module})\n"
                   f"{node.op}, {', '.join(ins)} -> {', '.join(outs)}")
        layer = _Layer(index, node, KERNEL_FILES.get(node.op), comment)
        handler(layer)
        return layer

    def wide(self, layer: _Layer) -> bool:
        """Does this conv / linear layer run in 16x8 mode (int16 activations, int64 bias)?"""
        node, g = layer.node, self.g
        x, _, b = (g.t(n) for n in node.inputs)
        y = g.t(node.outputs[0])
        if x.dtype == "int8" and y.dtype == "int8":
            if b.dtype != "int32":
                raise UnsupportedOpError(f"{node.op} at {node.where()}: int8 layer with a {b.dtype} bias")
            return False
        a = node.attrs
        if x.dtype != "int16" or y.dtype != "int16" or b.dtype != "int64":
            raise UnsupportedOpError(f"{node.op} at {node.where()}: {x.dtype} input, {y.dtype} output and "
                                     f"{b.dtype} bias; the C target runs int8 layers and 16x8 layers "
                                     f"(int16 input and output, int64 bias)")
        if int(a["input_zero_point"]) != 0 or int(a["output_zero_point"]) != 0:
            raise UnsupportedOpError(f"{node.op} at {node.where()}: 16x8 layers need zero points 0")
        if int(np.max(np.asarray(a["shift"]))) > 14:
            raise UnsupportedOpError(f"{node.op} at {node.where()}: 16x8 requantization shift above 14")
        return True

    def _conv_common(self, layer: _Layer) -> tuple[list[tuple[str, Any]], str, str, int]:
        node, g = layer.node, self.g
        a = node.attrs
        x, w, b = (g.t(n) for n in node.inputs)
        y = g.t(node.outputs[0])
        _, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        depthwise = node.op == "depthwise_conv2d"
        wide = self.wide(layer)
        kh, kw = (w.shape[1], w.shape[2])
        wsym = self.const_array(layer, "weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                                f"int8 weights, {'1HWO' if depthwise else 'OHWI'} {_shape(w.shape)}")
        bsym = self.bias_array(layer, b, wide)
        msym, ssym = self.requant_arrays(layer, oc)
        pt, pl, _, _ = a["padding"]
        fields: list[tuple[str, Any]] = [
            ("input_height", ih), ("input_width", iw), ("input_channels", ic),
            ("output_height", oh), ("output_width", ow)]
        if not depthwise:
            fields.append(("output_channels", oc))
        else:
            fields.append(("depth_multiplier", oc // ic))
        fields += [
            ("kernel_height", kh), ("kernel_width", kw),
            ("stride_height", a["stride"][0]), ("stride_width", a["stride"][1]),
            ("dilation_height", a["dilation"][0]), ("dilation_width", a["dilation"][1]),
            ("pad_top", pt), ("pad_left", pl)]
        if not depthwise:
            fields.append(("groups", a["groups"]))
        if not wide:
            fields += [("input_offset", -int(a["input_zero_point"])),
                       ("output_offset", a["output_zero_point"])]
        fields += [
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("weights", wsym), ("bias", bsym), ("multiplier", msym), ("shift", ssym)]
        return fields, f"{kh}x{kw}", f"stride {a['stride'][0]}x{a['stride'][1]}", oc

    def bias_array(self, layer: _Layer, b: Any, wide: bool) -> str:
        if wide:
            return self.const_array(layer, "bias", "int64_t", b.data.astype(np.int64), b.name, 4,
                                    "int64 biases of a 16x8 layer (scale input_scale * weight_scale[channel])")
        return self.const_array(layer, "bias", "int32_t", b.data.astype(np.int64), b.name, 6,
                                "int32 biases (scale input_scale * weight_scale[channel])")

    def _kernel(self, layer: _Layer, fn: str, ctype: str) -> tuple[str, str]:
        """(function, parameter struct type) of the layer's kernel: the ``_s16`` one (and its
        file) when the layer has int16 activations."""
        if not self._int16_layer(layer.node):
            return f"{fn}_s8", f"{ctype}_params"
        layer.kernel_file = KERNEL_FILES_S16[layer.node.op]
        layer.comment += ", 16x8 (int16 activations)"
        return f"{fn}_s16", (f"{ctype}_s16_params" if layer.node.op in ("conv2d", "depthwise_conv2d", "linear")
                             else f"{ctype}_params")

    def _int16_layer(self, node: Node) -> bool:
        g = self.g
        return any(g.t(n).dtype == "int16" for n in [*node.inputs, *node.outputs] if not g.t(n).is_constant)

    def _op_conv2d(self, layer: _Layer) -> None:
        fields, k, s, _ = self._conv_common(layer)
        layer.comment += f", {k} {s}" + (f", {layer.node.attrs['groups']} groups"
                                         if layer.node.attrs["groups"] > 1 else "")
        fn, ctype = self._kernel(layer, "edgeq_conv2d", "edgeq_conv2d")
        p = self.params(layer, ctype, fields)
        layer.call = self._call(fn, p, layer)

    def _op_depthwise_conv2d(self, layer: _Layer) -> None:
        fields, k, s, _ = self._conv_common(layer)
        layer.comment += f", {k} {s}"
        fn, ctype = self._kernel(layer, "edgeq_depthwise_conv2d", "edgeq_depthwise_conv2d")
        p = self.params(layer, ctype, fields)
        layer.call = self._call(fn, p, layer)

    def _op_conv_transpose2d(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        x, w, b = (g.t(n) for n in node.inputs)
        y = g.t(node.outputs[0])
        _, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        kh, kw = w.shape[1], w.shape[2]
        if w.shape[0] != oc or w.shape[3] * a["groups"] != ic:
            raise UnsupportedOpError(f"conv_transpose2d at {node.where()}: filters {_shape(w.shape)} are not "
                                     f"OHWI for {ic} input and {oc} output channels in {a['groups']} groups")
        wsym = self.const_array(layer, "weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                                f"int8 filters, OHWI {_shape(w.shape)}")
        bsym = self.const_array(layer, "bias", "int32_t", b.data.astype(np.int64), b.name, 6,
                                "int32 biases (scale input_scale * weight_scale[channel])")
        msym, ssym = self.requant_arrays(layer, oc)
        layer.comment += (f", {kh}x{kw} stride {a['stride'][0]}x{a['stride'][1]}"
                          + (f", {a['groups']} groups" if a["groups"] > 1 else ""))
        p = self.params(layer, "edgeq_conv_transpose2d_params", [
            ("input_height", ih), ("input_width", iw), ("input_channels", ic),
            ("output_height", oh), ("output_width", ow), ("output_channels", oc),
            ("kernel_height", kh), ("kernel_width", kw),
            ("stride_height", a["stride"][0]), ("stride_width", a["stride"][1]),
            ("dilation_height", a["dilation"][0]), ("dilation_width", a["dilation"][1]),
            ("pad_top", a["padding"][0]), ("pad_left", a["padding"][1]), ("groups", a["groups"]),
            ("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("weights", wsym), ("bias", bsym), ("multiplier", msym), ("shift", ssym)])
        layer.call = self._call("edgeq_conv_transpose2d_s8", p, layer)

    def _op_linear(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        x, w, b = (g.t(n) for n in node.inputs)
        out_f, in_f = w.shape
        wide = self.wide(layer)
        wsym = self.const_array(layer, "weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                                f"int8 weights [out][in] {_shape(w.shape)}")
        bsym = self.bias_array(layer, b, wide)
        msym, ssym = self.requant_arrays(layer, out_f)
        offsets = [] if wide else [("input_offset", -int(a["input_zero_point"])),
                                   ("output_offset", a["output_zero_point"])]
        fn, ctype = self._kernel(layer, "edgeq_fully_connected", "edgeq_fully_connected")
        p = self.params(layer, ctype, [
            ("rows", x.size // in_f), ("input_features", in_f), ("output_features", out_f),
            *offsets, ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("weights", wsym), ("bias", bsym), ("multiplier", msym), ("shift", ssym)])
        layer.call = self._call(fn, p, layer)

    def _add_fields(self, a: dict, size: int | None) -> list[tuple[str, Any]]:
        fields: list[tuple[str, Any]] = [] if size is None else [("size", size)]
        return fields + [
            ("left_shift", a["left_shift"]),
            ("input1_offset", -int(a["input1_zero_point"])),
            ("input1_multiplier", a["input1_multiplier"]), ("input1_shift", a["input1_shift"]),
            ("input2_offset", -int(a["input2_zero_point"])),
            ("input2_multiplier", a["input2_multiplier"]), ("input2_shift", a["input2_shift"]),
            ("output_offset", a["output_zero_point"]),
            ("output_multiplier", a["output_multiplier"]), ("output_shift", a["output_shift"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"])]

    def _op_add(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        s1, s2 = (g.t(n).shape for n in node.inputs)
        so = g.t(node.outputs[0]).shape
        if self._int16_layer(node):
            if s1 != so or s2 != so or any(g.t(n).is_constant or g.t(n).dtype != "int16"
                                           for n in [*node.inputs, *node.outputs]):
                raise UnsupportedOpError(f"add at {node.where()}: the C target's int16 add takes two "
                                         f"int16 activations of the output's shape (no broadcasting, "
                                         f"no constant operand)")
            fn, ctype = self._kernel(layer, "edgeq_add", "edgeq_add")
            p = self.params(layer, ctype, self._add_fields(a, int(np.prod(so))))
            layer.call = (f"{fn}(&{p}, {self.tptr(node.inputs[0], True)}, {self.tptr(node.inputs[1], True)}, "
                          f"{self.tptr(node.outputs[0])});")
            return
        operands = [self.operand(layer, 0), self.operand(layer, 1)]
        out = self.ptr(node.outputs[0])
        if s1 == so and s2 == so:
            p = self.params(layer, "edgeq_add_params", self._add_fields(a, int(np.prod(so))))
            layer.call = f"edgeq_add_s8(&{p}, {operands[0]}, {operands[1]}, {out});"
            return
        layer.kernel_file = "edgeq_add_broadcast.c"
        p = self.params(layer, "edgeq_add_broadcast_params",
                        [("add", self._add_fields(a, 0)), *self.broadcast(layer)])
        layer.call = f"edgeq_add_broadcast_s8(&{p}, {operands[0]}, {operands[1]}, {out});"

    def _binary_call(self, layer: _Layer, fn: str, params: str) -> str:
        return (f"{fn}(&{params}, {self.operand(layer, 0)}, {self.operand(layer, 1)}, "
                f"{self.ptr(layer.node.outputs[0])});")

    def _op_sub(self, layer: _Layer) -> None:
        p = self.params(layer, "edgeq_sub_params", [("add", self._add_fields(layer.node.attrs, 0)),
                                                    ("shape", self.broadcast(layer))])
        layer.call = self._binary_call(layer, "edgeq_sub_s8", p)

    def _op_mul(self, layer: _Layer) -> None:
        a = layer.node.attrs
        p = self.params(layer, "edgeq_mul_params", [
            ("input1_offset", -int(a["input1_zero_point"])), ("input2_offset", -int(a["input2_zero_point"])),
            ("output_offset", a["output_zero_point"]),
            ("multiplier", a["multiplier"]), ("shift", a["shift"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("shape", self.broadcast(layer))])
        layer.call = self._binary_call(layer, "edgeq_mul_s8", p)

    def _minmax(self, layer: _Layer) -> None:
        a = layer.node.attrs
        r1, r2 = a["requant"]
        p = self.params(layer, "edgeq_minmax_params", [
            ("input1", self.rescale_fields(r1)), ("input2", self.rescale_fields(r2)),
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("shape", self.broadcast(layer))])
        layer.call = self._binary_call(layer, f"edgeq_{layer.node.op}_s8", p)

    _op_maximum = _op_minimum = _minmax

    def _op_leaky_relu(self, layer: _Layer) -> None:
        a = layer.node.attrs
        layer.comment += f", alpha {float(a['alpha']):g}"
        p = self.params(layer, "edgeq_leaky_relu_params", [
            ("size", self.g.t(layer.node.outputs[0]).size),
            ("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"]),
            ("identity_multiplier", a["multiplier_identity"]), ("identity_shift", a["shift_identity"]),
            ("alpha_multiplier", a["multiplier_alpha"]), ("alpha_shift", a["shift_alpha"])])
        layer.call = self._call("edgeq_leaky_relu_s8", p, layer)

    def _op_prelu(self, layer: _Layer) -> None:
        a = layer.node.attrs
        p = self.params(layer, "edgeq_prelu_params", [
            ("input_offset", -int(a["input_zero_point"])), ("alpha_offset", -int(a["alpha_zero_point"])),
            ("output_offset", a["output_zero_point"]),
            ("identity_multiplier", a["multiplier_1"]), ("identity_shift", a["shift_1"]),
            ("alpha_multiplier", a["multiplier_2"]), ("alpha_shift", a["shift_2"]),
            ("shape", self.broadcast(layer))])
        layer.call = self._binary_call(layer, "edgeq_prelu_s8", p)

    def _op_concat(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        axis = int(node.attrs["axis"])
        so = g.t(node.outputs[0]).shape
        axis = axis % len(so)
        outer = int(np.prod(so[:axis], dtype=np.int64))
        inner = int(np.prod(so[axis + 1:], dtype=np.int64))
        layer.comment += f", axis {axis}"
        out = self.ptr(node.outputs[0])
        calls, start = [], 0
        for i, (n, rq) in enumerate(zip(node.inputs, node.attrs["requant"])):
            row = g.t(n).shape[axis] * inner
            p = self.params(layer, "edgeq_concat_params", [
                ("outer", outer), ("input_row", row), ("output_row", so[axis] * inner),
                ("output_start", start), ("rescale", self.rescale_fields(rq))], suffix=f"_input{i}")
            calls.append(f"edgeq_concat_s8(&{p}, {self.operand(layer, i)}, {out});")
            start += row
        layer.call = "\n".join(calls)

    def _op_pad(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        si = list(g.t(node.inputs[0]).shape)
        so = list(g.t(node.outputs[0]).shape)
        pads = [tuple(int(v) for v in p) for p in node.attrs["pads"]]
        out_strides = _strides(so)
        start = sum(b * st for (b, _), st in zip(pads, out_strides))
        shape, (strides,) = collapse_dims(si, [out_strides])
        if len(shape) > MAX_DIMS:
            raise UnsupportedOpError(f"pad of {len(shape)} dimensions at {node.where()}; the C kernel "
                                     f"takes at most {MAX_DIMS} (see `edgeq targets --ops`)")
        layer.comment += f", pads {[list(p) for p in pads]}"
        rest = MAX_DIMS - len(shape)
        p = self.params(layer, "edgeq_pad_params", [
            ("dims", len(shape)), ("input_shape", shape + [1] * rest), ("output_strides", strides + [0] * rest),
            ("output_start", start), ("output_size", int(np.prod(so, dtype=np.int64))),
            ("pad_value", node.attrs["pad_value"])])
        layer.call = self._call("edgeq_pad_s8", p, layer)

    def _op_slice(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        si = list(g.t(node.inputs[0]).shape)
        so = list(g.t(node.outputs[0]).shape)
        in_strides = _strides(si)
        start = sum(int(b) * st for b, st in zip(a["begin"][1:], in_strides[1:]))
        steps = [st * int(k) for st, k in zip(in_strides, a["strides"])]
        shape, (strides,) = collapse_dims(so, [steps])
        if len(shape) > MAX_DIMS:
            raise UnsupportedOpError(f"slice of {len(shape)} dimensions at {node.where()}; the C kernel "
                                     f"takes at most {MAX_DIMS} (see `edgeq targets --ops`)")
        layer.comment += (f", begin {list(a['begin'][1:])} end {list(a['end'][1:])} "
                          f"step {list(a['strides'][1:])}")
        rest = MAX_DIMS - len(shape)
        p = self.params(layer, "edgeq_slice_params", [
            ("dims", len(shape)), ("output_shape", shape + [1] * rest),
            ("input_strides", strides + [0] * rest), ("input_start", start)])
        layer.call = self._call("edgeq_slice_s8", p, layer)

    def _op_resize_nearest(self, layer: _Layer) -> None:
        from ...ops import get_op
        node, g = layer.node, self.g
        _, ih, iw, c = g.t(node.inputs[0]).shape
        _, oh, ow, _ = g.t(node.outputs[0]).shape
        rows, cols = get_op("resize_nearest").indices(node, g)
        if rows.size != oh or cols.size != ow or rows.min() < 0 or rows.max() >= min(ih, 1 << 15) \
                or cols.min() < 0 or cols.max() >= min(iw, 1 << 15):
            raise UnsupportedOpError(f"resize_nearest at {node.where()}: source indices out of range")
        rsym = self.const_array(layer, "rows", "int16_t", rows, node.name, 16,
                                f"source row of each of the {oh} output rows")
        csym = self.const_array(layer, "cols", "int16_t", cols, node.name, 16,
                                f"source column of each of the {ow} output columns")
        layer.comment += f", {ih}x{iw} -> {oh}x{ow}"
        p = self.params(layer, "edgeq_resize_nearest_params", [
            ("input_width", iw), ("channels", c), ("output_height", oh), ("output_width", ow),
            ("rows", rsym), ("cols", csym)])
        layer.call = self._call("edgeq_resize_nearest_s8", p, layer)

    def _op_clamp(self, layer: _Layer) -> None:
        a = layer.node.attrs
        p = self.params(layer, "edgeq_clamp_params", [
            ("size", self.g.t(layer.node.outputs[0]).size),
            ("input_offset", -int(a["input_zero_point"])),
            ("multiplier", a["multiplier"]), ("shift", a["shift"]),
            ("output_offset", a["output_zero_point"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"])])
        layer.call = self._call("edgeq_clamp_s8", p, layer)

    def _pool(self, layer: _Layer, fn: str) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        _, ih, iw, c = g.t(node.inputs[0]).shape
        _, oh, ow, _ = g.t(node.outputs[0]).shape
        layer.comment += f", {a['kernel'][0]}x{a['kernel'][1]} stride {a['stride'][0]}x{a['stride'][1]}"
        if self._int16_layer(node):
            if a["kernel"][0] * a["kernel"][1] >= 1 << 16:
                raise UnsupportedOpError(f"{node.op} at {node.where()}: int16 pooling windows must have "
                                         f"fewer than 65536 taps (int32 sum)")
            fn, _ = self._kernel(layer, fn[:-len("_s8")], "edgeq_pool2d")
        p = self.params(layer, "edgeq_pool2d_params", [
            ("input_height", ih), ("input_width", iw), ("channels", c),
            ("output_height", oh), ("output_width", ow),
            ("kernel_height", a["kernel"][0]), ("kernel_width", a["kernel"][1]),
            ("stride_height", a["stride"][0]), ("stride_width", a["stride"][1]),
            ("pad_top", a["padding"][0]), ("pad_left", a["padding"][1]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"])])
        layer.call = self._call(fn, p, layer)

    def _op_max_pool2d(self, layer: _Layer) -> None:
        self._pool(layer, "edgeq_max_pool2d_s8")

    def _op_avg_pool2d(self, layer: _Layer) -> None:
        self._pool(layer, "edgeq_avg_pool2d_s8")

    def _op_reshape(self, layer: _Layer) -> None:
        node = layer.node
        src, dst = node.inputs[0], node.outputs[0]
        if node.name in self.plan.alias_nodes:
            layer.kernel_file = None
            layer.comment += f"\nno code: {dst} shares the memory of {src} ({self.where(src)})"
            return
        layer.call = (f"edgeq_copy_s8({self.ptr(src)}, {self.ptr(dst)}, "
                      f"{self.nbytes(dst)});")

    def _op_transpose(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        perm = list(node.attrs["perm"])
        shape = g.t(node.inputs[0]).shape
        in_strides = _strides(shape)
        out_shape, (strides,) = collapse_dims([shape[p] for p in perm], [[in_strides[p] for p in perm]])
        if len(out_shape) > MAX_DIMS:
            raise UnsupportedOpError(f"transpose of {len(out_shape)} dimensions at {node.where()}; the C "
                                     f"kernel takes at most {MAX_DIMS} (see `edgeq targets --ops`)")
        pad = MAX_DIMS - len(out_shape)
        layer.comment += f", perm {perm}"
        fn, ctype = self._kernel(layer, "edgeq_transpose", "edgeq_transpose")
        p = self.params(layer, ctype, [
            ("dims", len(out_shape)), ("output_shape", out_shape + [1] * pad),
            ("input_strides", strides + [0] * pad)])
        layer.call = self._call(fn, p, layer)

    def _op_requantize(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        src, dst = g.t(node.inputs[0]), g.t(node.outputs[0])
        kinds = {("int8", "int16"): "s8_s16", ("int16", "int8"): "s16_s8"}
        if (src.dtype, dst.dtype) not in kinds:
            raise UnsupportedOpError(f"requantize at {node.where()}: {src.dtype} -> {dst.dtype}; the C target "
                                     f"converts int8 <-> int16 only")
        layer.kernel_file = KERNEL_FILES_S16["requantize"]
        layer.comment += f", {src.dtype} -> {dst.dtype}"
        p = self.params(layer, "edgeq_requantize_params", [
            ("size", dst.size), ("input_offset", -int(a["input_zero_point"])),
            ("multiplier", a["multiplier"]), ("shift", a["shift"]),
            ("output_offset", a["output_zero_point"])])
        layer.call = self._call(f"edgeq_requantize_{kinds[(src.dtype, dst.dtype)]}", p, layer)

    def _op_resize_bilinear(self, layer: _Layer) -> None:
        from ...ops.data_movement import bilinear_source
        node, g = layer.node, self.g
        _, ih, iw, c = g.t(node.inputs[0]).shape
        _, oh, ow, _ = g.t(node.outputs[0]).shape
        ac = bool(node.attrs["align_corners"])
        fields: list[tuple[str, Any]] = [("input_width", iw), ("channels", c), ("output_height", oh),
                                         ("output_width", ow)]
        arrays = []
        for axis, size, out in (("row", ih, oh), ("col", iw, ow)):
            lower, upper, frac = bilinear_source(size, out, ac)
            if (lower.size != out or lower.min() < 0 or upper.max() >= size or size >= 1 << 15
                    or frac.min() < -(1 << 15) or frac.max() >= 1 << 15):
                raise UnsupportedOpError(f"resize_bilinear at {node.where()}: source positions out of range")
            what = "row" if axis == "row" else "column"
            for part, values, note in (("lower", lower, f"lower source {what}"),
                                       ("upper", upper, f"upper source {what}"),
                                       ("fraction", frac, f"position above the lower {what}, 1/1024")):
                sym = self.const_array(layer, f"{axis}_{part}", "int16_t", values, node.name, 16,
                                       f"{note} of each of the {out} output {what}s")
                arrays.append((f"{axis}_{part}", sym))
        layer.comment += f", {ih}x{iw} -> {oh}x{ow}" + (", align_corners" if ac else ", half-pixel")
        p = self.params(layer, "edgeq_resize_bilinear_params", fields + arrays)
        layer.call = self._call("edgeq_resize_bilinear_s8", p, layer)

    def _axis_rows(self, layer: _Layer, axis: int) -> tuple[int, int, int]:
        """(outer, depth, inner) of a tensor seen along ``axis`` (row-major)."""
        shape = self.g.t(layer.node.inputs[0]).shape
        axis %= len(shape)
        return (int(np.prod(shape[:axis], dtype=np.int64)), int(shape[axis]),
                int(np.prod(shape[axis + 1:], dtype=np.int64)))

    def _status_call(self, fn: str, p: str, layer: _Layer) -> str:
        node = layer.node
        return (f"status = {fn}(&{p}, {self.ptr(node.inputs[0])}, {self.ptr(node.outputs[0])});\n"
                f"if (status != 0) {{\n    return status;\n}}")

    def _op_log_softmax(self, layer: _Layer) -> None:
        a = layer.node.attrs
        outer, depth, inner = self._axis_rows(layer, a["axis"])
        layer.comment += f", axis {a['axis']}"
        p = self.params(layer, "edgeq_log_softmax_params", [
            ("outer", outer), ("depth", depth), ("inner", inner),
            ("input_multiplier", a["input_multiplier"]), ("input_left_shift", a["input_left_shift"]),
            ("diff_min", a["diff_min"]),
            ("reverse_scaling_divisor", a["reverse_scaling_divisor"]),
            ("reverse_scaling_left_shift", a["reverse_scaling_left_shift"])])
        layer.call = self._status_call("edgeq_log_softmax_s8", p, layer)

    def _op_mean(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        shape = list(g.t(node.inputs[0]).shape)
        axes = sorted({int(v) % len(shape) for v in a["axes"]})
        strides = _strides(shape)
        kept = [d for d in range(len(shape)) if d not in axes]
        out_shape, (out_strides,) = collapse_dims([shape[d] for d in kept], [[strides[d] for d in kept]])
        red_shape, (red_strides,) = collapse_dims([shape[d] for d in axes], [[strides[d] for d in axes]])
        if max(len(out_shape), len(red_shape)) > MAX_DIMS:
            raise UnsupportedOpError(f"mean over {len(shape)} dimensions at {node.where()}; the C kernel "
                                     f"takes at most {MAX_DIMS} (see `edgeq targets --ops`)")
        if int(np.prod(red_shape)) != int(a["num_elements"]):
            raise UnsupportedOpError(f"mean at {node.where()}: {a['num_elements']} elements per mean, "
                                     f"the axes {axes} hold {int(np.prod(red_shape))}")
        layer.comment += f", axes {axes}"
        po, pr = MAX_DIMS - len(out_shape), MAX_DIMS - len(red_shape)
        p = self.params(layer, "edgeq_mean_params", [
            ("output_dims", len(out_shape)), ("output_shape", out_shape + [1] * po),
            ("output_strides", out_strides + [0] * po),
            ("reduce_dims", len(red_shape)), ("reduce_shape", red_shape + [1] * pr),
            ("reduce_strides", red_strides + [0] * pr),
            ("num_elements", a["num_elements"]), ("input_offset", -int(a["input_zero_point"])),
            ("multiplier", a["multiplier"]), ("shift", a["shift"]),
            ("output_offset", a["output_zero_point"])])
        layer.call = self._call("edgeq_mean_s8", p, layer)

    def _op_argmax(self, layer: _Layer) -> None:
        node = layer.node
        outer, depth, inner = self._axis_rows(layer, node.attrs["axis"])
        layer.comment += f", axis {node.attrs['axis']}; int32 indices, 4 little-endian bytes each"
        p = self.params(layer, "edgeq_argmax_params", [("outer", outer), ("depth", depth), ("inner", inner)])
        layer.call = self._call("edgeq_argmax_s8", p, layer)

    def _op_softmax(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        shape = g.t(node.inputs[0]).shape
        axis = a["axis"] % len(shape)
        outer = int(np.prod(shape[:axis], dtype=np.int64))
        inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
        p = self.params(layer, "edgeq_softmax_params", [
            ("outer", outer), ("depth", shape[axis]), ("inner", inner),
            ("input_multiplier", a["input_multiplier"]), ("input_left_shift", a["input_left_shift"]),
            ("diff_min", a["diff_min"])])
        layer.call = self._status_call("edgeq_softmax_s8", p, layer)

    def _table(self, layer: _Layer) -> None:
        node = layer.node
        table = np.asarray(node.attrs["table"]).reshape(-1)
        if table.size != 256:
            raise UnsupportedOpError(f"{node.where()}: lookup table has {table.size} entries, not 256")
        sym = self.const_array(layer, "table", "int8_t", table.astype(np.int64), node.name, 16,
                               f"{node.op} lookup table: output for input -128..127")
        layer.call = (f"edgeq_lookup_s8({sym}, {self.ptr(node.inputs[0])}, {self.ptr(node.outputs[0])}, "
                      f"{self.g.t(node.outputs[0]).size});")

    _op_sigmoid = _op_tanh = _op_hardswish = _op_gelu = _table

    def _call(self, fn: str, params: str, layer: _Layer) -> str:
        node, g = layer.node, self.g
        acts = [self.tptr(n, const=True) for n in node.inputs if not g.t(n).is_constant]
        return f"{fn}(&{params}, {', '.join(acts)}, {self.tptr(node.outputs[0])});"

    # -- files ----------------------------------------------------------------------
    def run(self) -> CModel:
        g = self.g
        for i, node in enumerate(g.nodes):
            self.layers.append(self.layer(i, node))
        kernel_files = sorted({l.kernel_file for l in self.layers if l.kernel_file}
                              | ({"edgeq_copy.c"} if self.plan.output_copies else set()))
        files = {
            f"{self.name}.h": self.header(),
            f"{self.name}.c": self.source(kernel_files),
            f"{self.name}_weights.c": self.weights(),
            KERNEL_HEADER: (KERNEL_DIR / KERNEL_HEADER).read_text(),
        }
        for k in kernel_files:
            files[k] = (KERNEL_DIR / k if (KERNEL_DIR / k).exists() else KERNEL_DIR_S16 / k).read_text()
        files["README.md"] = self.readme(kernel_files)
        return CModel(self.name, files, self.plan, kernel_files, self.weight_bytes,
                      self.plan.input_size, self.plan.output_size)

    def _io_lines(self, kind: str, names: list[str], offsets: list[int]) -> list[str]:
        g, up = self.g, self.upper
        total = sum(self.nbytes(n) for n in names)
        lines = [f"#define {up}_{kind}_SIZE {total}"]
        if len(names) > 1:
            for i, (n, off) in enumerate(zip(names, offsets)):
                index = ", int32 indices, scale 1, zero point 0" if g.t(n).dtype == "int32" else ""
                lines.append(f"#define {up}_{kind}{i}_SIZE {self.nbytes(n)}    "
                             f"/* {_comment(n)}: {_shape(g.t(n).shape)}{index} */")
                lines.append(f"#define {up}_{kind}{i}_OFFSET {off}")
        return lines

    def header(self) -> str:
        g, up, name = self.g, self.upper, self.name
        ins = ", ".join(f"{_comment(n)} {_shape(g.t(n).shape)}" for n in g.inputs)
        outs = ", ".join(f"{_comment(n)} {_shape(g.t(n).shape)}"
                         + (" int32 indices" if g.t(n).dtype == "int32" else "")
                         + (" int16" if g.t(n).dtype == "int16" else "") for n in g.outputs)
        has_index = any(g.t(n).dtype == "int32" for n in g.outputs)
        wide_out = any(g.t(n).dtype == "int16" for n in g.outputs)
        out_types = "int8" + (", int16 as 2 little-endian bytes each" if wide_out else "") \
            + (", and int32 as 4 little-endian bytes each" if has_index else "")
        lines = [
            f"/* Generated by edgeq: {self.kind} model '{name}'.  Do not edit. */",
            f"#ifndef {up}_H",
            f"#define {up}_H",
            "",
            "#include <stdint.h>",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            f"/* Input: {ins} (int8, NHWC, batch 1). */",
            *self._io_lines("INPUT", g.inputs, self.plan.input_offsets),
            f"/* Output: {outs} ({out_types}). */",
            f"/* Sizes are in bytes. */",
            *self._io_lines("OUTPUT", g.outputs, self.plan.output_offsets),
            f"/* Bytes of the static activation arena inside {name}.c (input and output excluded). */",
            f"#define {up}_ARENA_SIZE {self.plan.arena_size}",
            "",
            "/* real value = scale * (q - zero_point); inputs are quantized as",
            " * q = clamp(round_half_away_from_zero(x / scale) + zero_point, -128, 127). */",
        ]
        for kind, names in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
            lines.append(f"extern const float {up}_{kind}_SCALE;")
            lines.append(f"extern const int32_t {up}_{kind}_ZERO_POINT;")
            if len(names) > 1:
                for i in range(len(names)):
                    lines.append(f"extern const float {up}_{kind}{i}_SCALE;")
                    lines.append(f"extern const int32_t {up}_{kind}{i}_ZERO_POINT;")
        multi = ""
        if len(g.inputs) > 1:
            multi += (f"\n * The inputs are concatenated in order in `input` ({up}_INPUTi_OFFSET, "
                      f"{up}_INPUTi_SIZE).")
        if len(g.outputs) > 1:
            multi += (f"\n * The outputs are written concatenated in order to `output` "
                      f"({up}_OUTPUTi_OFFSET, {up}_OUTPUTi_SIZE).")
        if any(g.t(n).dtype == "int16" for n in g.outputs):
            multi += ("\n * int16 outputs (16x8 layers, zero point 0) are int16_t values in native (little-endian)"
                      "\n * order: `output` must be aligned for int16_t.")
        lines += [
            "",
            f"/* Run the model on {up}_INPUT_SIZE int8 values at `input`, write {up}_OUTPUT_SIZE bytes",
            f" * to `output`.  Returns 0 on success.  `input` and `output` must not overlap;",
            f" * `output` is also used as working memory for the output tensors.{multi}",
            f" * Not re-entrant for the same model (one static arena); different models are",
            f" * independent. */",
            f"int {name}_invoke(const int8_t *input, int8_t *output);",
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            f"#endif /* {up}_H */",
            "",
        ]
        return "\n".join(lines)

    def source(self, kernel_files: list[str]) -> str:
        g, up, name, plan = self.g, self.upper, self.name, self.plan
        # calls first: they allocate the offset names
        body: list[str] = []
        for layer in self.layers:
            title, *rest = _comment(layer.comment).split("\n")
            body.append(f"    /* {title}" + "".join(f"\n     * {r}" for r in rest) + " */")
            if layer.node.name in plan.inplace_nodes:
                body.append(f"    /* in place: overwrites {_comment(plan.inplace_nodes[layer.node.name])}, "
                            f"which is not used afterwards */")
            if layer.call:
                body.extend("    " + ln for ln in layer.call.split("\n"))
            if self.trace:
                out = layer.node.outputs[0]
                body.append(f"    edgeq_trace({layer.index}, {self.ptr(out)}, {self.nbytes(out)});")
            body.append("")
        for tensor, slot in plan.output_copies:
            self.used_regions.add("output")
            off = plan.output_offsets[slot]
            dst = "output" if off == 0 else f"output + {off}"
            body.append(f"    /* graph output {slot} is {_comment(tensor)}, stored elsewhere: copy it */")
            body.append(f"    edgeq_copy_s8({self.ptr(tensor)}, {dst}, {self.nbytes(tensor)});")
            body.append("")

        lines = [
            f"/* Generated by edgeq: {self.kind} model '{name}', {len(g.nodes)} layers.  Do not edit.",
            f" * See README.md; kernels in {KERNEL_HEADER}, weights in {name}_weights.c. */",
            f'#include "{name}.h"',
            f'#include "{KERNEL_HEADER}"',
            "",
        ]
        for kind, names in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
            for i, n in enumerate(names):
                # int32 indices (argmax) are not quantized: scale 1, zero point 0
                s, zp = g.t(n).quant.scalar() if g.t(n).quant is not None else (1.0, 0)
                tags = [f"{up}_{kind}"] + ([f"{up}_{kind}{i}"] if len(names) > 1 else [])
                for j, tag in enumerate(tags):
                    if j == 0 and i > 0:
                        continue
                    lines.append(f"const float {tag}_SCALE = {_c_float(s)};")
                    lines.append(f"const int32_t {tag}_ZERO_POINT = {_c_int(zp)};")
        lines.append("")
        if self.trace:
            lines += ["/* debug build: called after every layer with its output */",
                      "void edgeq_trace(int layer, const int8_t *data, int32_t size);", ""]
        decls = [(l, d, c) for l in self.layers for d, _, c in l.arrays]
        if decls:
            lines.append(f"/* Constant weights and requantization arrays ({name}_weights.c). */")
            lines.extend(d for _, d, _ in decls)
            lines.append("")
        lines.append("/* Per-layer constants: shapes, zero points (offsets), multipliers, clamps. */")
        for layer in self.layers:
            if layer.params:
                lines.append(f"/* {_comment(layer.node.name)} ({_comment(layer.node.module_path or '<top level>')}) */")
                lines.append(layer.params)
        lines.append("")
        if plan.arena_size > 0:
            lines += [
                f"/* Memory plan: activation -> byte offset in the arena (size; live from layer to layer).",
                f" * Lower bound (largest sum of live activations at one layer): {plan.lower_bound} bytes. */",
                "enum {",
            ]
            seen: set[int] = set()
            entries = []
            for t in plan.tensors.values():
                if t.region != "arena" or t.buffer in seen or t.buffer not in self.offset_const:
                    continue
                seen.add(t.buffer)
                members = [m for m in plan.tensors.values() if m.buffer == t.buffer]
                first = min(m.first for m in members)
                last = max(m.last for m in members)
                who = ", ".join(_comment(m.name) for m in members)
                entries.append((t.offset, self.offset_const[t.buffer],
                                f"/* {who}: {t.size} B, layers {first}-{last} */"))
            width = max(len(e[1]) for e in entries) + len(str(max(e[0] for e in entries))) + 4
            lines += [f"    {f'{n} = {o},'.ljust(width)} {c}" for o, n, c in sorted(entries)]
            lines += [
                "};",
                "",
                f"/* Define {up}_ARENA_ATTRIBUTE to place the arena, e.g.",
                f" * -D'{up}_ARENA_ATTRIBUTE=__attribute__((section(\".ccmram\")))'. */",
                f"#ifndef {up}_ARENA_ATTRIBUTE",
                f"#define {up}_ARENA_ATTRIBUTE",
                "#endif",
                "",
                "/* The only writable memory of the model: all activations that are neither",
                " * the input nor the output.  The union aligns it for word access. */",
                "static union {",
                f"    int8_t bytes[{up}_ARENA_SIZE];",
                "    int32_t align;",
                f"}} {name}_arena {up}_ARENA_ATTRIBUTE;",
                "",
            ]
        uses_status = any(l.node.op in STATUS_OPS for l in self.layers)
        lines += [f"int {name}_invoke(const int8_t *input, int8_t *output)", "{"]
        if plan.arena_size > 0:
            lines.append(f"    int8_t *const arena = {name}_arena.bytes;")
        if uses_status:
            lines.append("    int status;")
        for region in ("input", "output"):
            if region not in self.used_regions:
                lines.append(f"    (void){region};")
        if len(lines) and lines[-1] != "{":
            lines.append("")
        lines.extend(body)
        lines += ["    return 0;", "}", ""]
        return "\n".join(lines)

    def weights(self) -> str:
        lines = [f"/* Generated by edgeq: constant weights and requantization arrays of model "
                 f"'{self.name}'.  Do not edit. */",
                 "#include <stdint.h>", ""]
        for layer in self.layers:
            if not layer.arrays:
                continue
            lines.append(f"/* {_comment(layer.node.name)} (torch module "
                         f"{_comment(layer.node.module_path or '<top level>')}) */")
            for _, definition, note in layer.arrays:
                lines.append(f"/* {_comment(note)} */")
                lines.append(definition)
        return "\n".join(lines)

    def readme(self, kernel_files: list[str]) -> str:
        g, up, name, plan = self.g, self.upper, self.name, self.plan
        srcs = [f"{name}.c", f"{name}_weights.c", *kernel_files]
        ops = sorted({n.op for n in g.nodes})
        return "\n".join([
            f"# `{name}`: {self.kind} model as C99",
            "",
            f"Generated by edgeq from a PyTorch model: {len(g.nodes)} layers ({', '.join(ops)}),"
            f" integer-only, bit-exact with edgeq's integer reference.",
            "",
            "## Files",
            f"- `{name}.h`: the API (sizes, quantization of input and output, `{name}_invoke`).",
            f"- `{name}.c`: the graph, one kernel call per layer with its constants, and the "
            f"static arena ({plan.arena_size} bytes).",
            f"- `{name}_weights.c`: weights, biases and requantization constants (const, in flash: "
            f"{self.weight_bytes} bytes).",
            f"- `{KERNEL_HEADER}` and {', '.join(f'`{k}`' for k in kernel_files) or 'no kernel files'}: "
            "the integer kernels this model uses.",
            "",
            "## Adding it to a firmware build",
            f"Compile the {len(srcs)} `.c` files with your other sources (C99, no libc calls, no "
            "heap) and add this folder to the include path, e.g. in a Makefile:",
            "",
            "```make",
            f"SRCS += $(addprefix {name}/, {' '.join(srcs)})",
            f"CFLAGS += -I{name}",
            "```",
            "",
            "or with CMake: `target_sources(app PRIVATE ...)` and `target_include_directories(app PRIVATE "
            f"{name})`.  Then:",
            "",
            "```c",
            f'#include "{name}.h"',
            "",
            f"static int8_t in[{up}_INPUT_SIZE], out[{up}_OUTPUT_SIZE];",
            "/* fill `in`: q = round(x / " + f"{up}_INPUT_SCALE) + {up}_INPUT_ZERO_POINT, clamped to int8 */",
            f"if ({name}_invoke(in, out) != 0) {{ /* error */ }}",
            (f"/* y = {up}_OUTPUT_SCALE * (out[i] - {up}_OUTPUT_ZERO_POINT) */"
             if not any(g.t(n).dtype == "int16" for n in g.outputs) else
             f"/* int16 output (align `out` for int16_t): y = {up}_OUTPUT_SCALE * ((const int16_t *)out)[i] */"),
            "```",
            "",
            "Layout: the input is NHWC (channels last) with batch 1, flattened; "
            + ("several inputs/outputs are concatenated in graph order (`*_OFFSET`, `*_SIZE` macros)."
               if len(g.inputs) > 1 or len(g.outputs) > 1 else "one input, one output."),
            "",
            "## Memory",
            f"- Arena: {plan.arena_size} bytes (lower bound for this plan: {plan.lower_bound}), a static "
            f"array in `{name}.c`. Place it in a section with "
            f"`-D'{up}_ARENA_ATTRIBUTE=__attribute__((section(\".my_ram\")))'`.",
            f"- Input ({plan.input_size} bytes) and output ({plan.output_size} bytes) are your buffers; "
            "the output buffer is written as working memory of the output tensors, the input is only read.",
            "- Stack: a few hundred bytes (kernel locals only).",
            "",
            "## Several models in one firmware",
            "Models with different names link together: their symbols are prefixed with the model name. "
            "The kernel files are identical for one edgeq version: compile each kernel `.c` once "
            "(the union of the models' kernel files) and keep one `edgeq_kernels.h`.",
            "",
        ])


def generate(graph: Graph, name: str, trace: bool = False) -> CModel:
    """Plan memory and generate every file text for ``graph`` (quantized, NHWC).

    ``trace``: a debug variant whose ``NAME_invoke`` calls ``edgeq_trace(layer, data, size)``
    after every layer (used to locate the first differing layer; never shipped)."""
    if not graph.quantized or graph.layout != "nhwc":
        raise UnsupportedOpError("the C target needs a quantized NHWC graph (call prepare() first)")
    producer = {o: node for node in graph.nodes for o in node.outputs}
    consumers = {x: node for node in graph.nodes for x in node.inputs}
    for n in graph.activations():
        t = graph.t(n)
        if t.dtype == "int8":
            continue
        node = producer.get(n)
        if t.dtype == "int32" and node is not None and node.op in INT32_OUTPUT_OPS and n not in consumers:
            continue
        if t.dtype == "int16" and node is not None:
            continue          # each op that reads or writes it checks that it has an int16 kernel
        where = f" (made by {node.op} at {node.where()})" if node is not None else ""
        raise UnsupportedOpError(f"the C target supports int8 activations, int16 activations inside the model "
                                 f"(16x8 layers), and int32 {'/'.join(INT32_OUTPUT_OPS)} "
                                 f"indices at the model's outputs only; {n}{where} is {t.dtype}"
                                 + (f" and feeds {consumers[n].op} at {consumers[n].where()}" if n in consumers else "")
                                 + " (see `edgeq targets --ops`)")
    for node in graph.nodes:
        acts = [n for n in [*node.inputs, *node.outputs] if not graph.t(n).is_constant]
        if node.op not in INT16_OPS and any(graph.t(n).dtype == "int16" for n in acts):
            raise UnsupportedOpError(f"the C target has no int16 kernel for op '{node.op}' at {node.where()} "
                                     f"(16x8 ops: {', '.join(INT16_OPS)})")
    plan = plan_memory(graph)
    for n, t in plan.tensors.items():
        if graph.t(n).dtype == "int16" and t.offset % 2:
            raise UnsupportedOpError(f"int16 tensor {n} would start at odd byte {t.offset} of the {t.region} "
                                     f"buffer; put the int16 outputs first")
    return _Emitter(graph, name, plan, trace).run()


def write(model: CModel, c_dir: Path) -> list[Path]:
    """Write every file atomically into ``c_dir``; returns their paths (sorted)."""
    paths = []
    for fname in sorted(model.files):
        path = Path(c_dir) / fname
        atomic_write_text(path, model.files[fname])
        os.chmod(path, 0o644)   # sources, not secrets (the atomic writer creates them 0600)
        paths.append(path)
    return paths
