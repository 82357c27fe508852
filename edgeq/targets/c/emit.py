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
from .planner import MemoryPlan, plan_memory

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
}
#: Ops computed by a 256-entry lookup table (``node.attrs['table']``, built by the op's quantize()).
TABLE_OPS = ("sigmoid", "tanh", "hardswish", "gelu")
SUPPORTED_OPS = tuple(sorted(set(KERNEL_FILES) | {"depthwise_conv2d"}))

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
        itemsize = {"int8_t": 1, "int32_t": 4}[ctype]
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

    def param_name(self, layer: _Layer) -> str:
        base = c_identifier(layer.node.name, "layer")
        if base.lower().startswith("edgeq") or base.isupper():
            base = f"layer_{base}"
        return self.ids.get(base)

    def params(self, layer: _Layer, ctype: str, fields: list[tuple[str, Any]]) -> str:
        pname = self.param_name(layer)
        width = max(len(f) for f, _ in fields)
        lines = [f"static const {ctype} {pname} = {{"]
        for f, v in fields:
            if isinstance(v, (list, tuple)):
                v = "{" + ", ".join(_c_int(x) for x in v) + "}"
            elif isinstance(v, (int, np.integer)):
                v = _c_int(v)
            lines.append(f"    .{f.ljust(width)} = {v},")
        lines.append("};")
        layer.params = "\n".join(lines)
        return pname

    # -- ops ------------------------------------------------------------------------
    def layer(self, index: int, node: Node) -> _Layer:
        g = self.g
        handler: Callable[[_Layer], None] | None = getattr(self, f"_op_{node.op}", None)
        if handler is None:
            raise UnsupportedOpError(f"the C target has no kernel for op '{node.op}' at {node.where()}; "
                                     f"supported: {', '.join(SUPPORTED_OPS)}")
        ins = [_shape(g.t(n).shape) for n in node.inputs if not g.t(n).is_constant]
        outs = [_shape(g.t(n).shape) for n in node.outputs]
        module = node.module_path or "<top level>"
        comment = (f"Layer {index}: {node.name} (torch module {module})\n"
                   f"{node.op}, {', '.join(ins)} -> {', '.join(outs)}")
        layer = _Layer(index, node, KERNEL_FILES.get(node.op), comment)
        handler(layer)
        return layer

    def _conv_common(self, layer: _Layer) -> tuple[list[tuple[str, Any]], str, str, int]:
        node, g = layer.node, self.g
        a = node.attrs
        x, w, b = (g.t(n) for n in node.inputs)
        y = g.t(node.outputs[0])
        _, ih, iw, ic = x.shape
        _, oh, ow, oc = y.shape
        depthwise = node.op == "depthwise_conv2d"
        kh, kw = (w.shape[1], w.shape[2])
        wsym = self.const_array(layer, "weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                                f"int8 weights, {'1HWO' if depthwise else 'OHWI'} {_shape(w.shape)}")
        bsym = self.const_array(layer, "bias", "int32_t", b.data.astype(np.int64), b.name, 6,
                                "int32 biases (scale input_scale * weight_scale[channel])")
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
        fields += [
            ("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("weights", wsym), ("bias", bsym), ("multiplier", msym), ("shift", ssym)]
        return fields, f"{kh}x{kw}", f"stride {a['stride'][0]}x{a['stride'][1]}", oc

    def _op_conv2d(self, layer: _Layer) -> None:
        fields, k, s, _ = self._conv_common(layer)
        layer.comment += f", {k} {s}" + (f", {layer.node.attrs['groups']} groups"
                                         if layer.node.attrs["groups"] > 1 else "")
        p = self.params(layer, "edgeq_conv2d_params", fields)
        layer.call = self._call("edgeq_conv2d_s8", p, layer)

    def _op_depthwise_conv2d(self, layer: _Layer) -> None:
        fields, k, s, _ = self._conv_common(layer)
        layer.comment += f", {k} {s}"
        p = self.params(layer, "edgeq_depthwise_conv2d_params", fields)
        layer.call = self._call("edgeq_depthwise_conv2d_s8", p, layer)

    def _op_linear(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        a = node.attrs
        x, w, b = (g.t(n) for n in node.inputs)
        out_f, in_f = w.shape
        wsym = self.const_array(layer, "weights", "int8_t", w.data.astype(np.int64), w.name, 16,
                                f"int8 weights [out][in] {_shape(w.shape)}")
        bsym = self.const_array(layer, "bias", "int32_t", b.data.astype(np.int64), b.name, 6,
                                "int32 biases (scale input_scale * weight_scale[channel])")
        msym, ssym = self.requant_arrays(layer, out_f)
        p = self.params(layer, "edgeq_fully_connected_params", [
            ("rows", x.size // in_f), ("input_features", in_f), ("output_features", out_f),
            ("input_offset", -int(a["input_zero_point"])), ("output_offset", a["output_zero_point"]),
            ("act_min", a["act_min"]), ("act_max", a["act_max"]),
            ("weights", wsym), ("bias", bsym), ("multiplier", msym), ("shift", ssym)])
        layer.call = self._call("edgeq_fully_connected_s8", p, layer)

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
        operands = []
        for i, n in enumerate(node.inputs):
            t = g.t(n)
            if t.is_constant:     # a constant operand (int8, per tensor): a const array
                if t.dtype != "int8":
                    raise UnsupportedOpError(f"add at {node.where()}: constant operand {n} is {t.dtype}")
                operands.append(self.const_array(layer, f"operand{i + 1}", "int8_t", t.data.astype(np.int64),
                                                 n, 16, f"constant operand {i + 1}, {_shape(t.shape)}"))
            else:
                operands.append(self.ptr(n))
        out = self.ptr(node.outputs[0])
        if s1 == so and s2 == so:
            p = self.params(layer, "edgeq_add_params", self._add_fields(a, int(np.prod(so))))
            layer.call = f"edgeq_add_s8(&{p}, {operands[0]}, {operands[1]}, {out});"
            return
        if len(so) > 6:
            raise UnsupportedOpError(f"broadcast add of rank {len(so)} at {node.where()}")
        layer.kernel_file = "edgeq_add_broadcast.c"

        def strides(shape: tuple[int, ...]) -> list[int]:
            shape = (1,) * (len(so) - len(shape)) + tuple(shape)
            st, acc = [], 1
            for d in reversed(shape):
                st.append(0 if d == 1 else acc)
                acc *= d
            return list(reversed(st))
        pad = [0] * (6 - len(so))
        add = ",\n        ".join(f".{f} = {_c_int(v)}" for f, v in self._add_fields(a, 0))
        pname = self.param_name(layer)
        layer.params = (f"static const edgeq_add_broadcast_params {pname} = {{\n"
                        f"    .add = {{\n        {add},\n    }},\n"
                        f"    .dims = {len(so)},\n"
                        f"    .output_shape = {{{', '.join(str(v) for v in list(so) + [1] * len(pad))}}},\n"
                        f"    .input1_strides = {{{', '.join(str(v) for v in strides(s1) + pad)}}},\n"
                        f"    .input2_strides = {{{', '.join(str(v) for v in strides(s2) + pad)}}},\n"
                        "};")
        layer.call = f"edgeq_add_broadcast_s8(&{pname}, {operands[0]}, {operands[1]}, {out});"

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
                      f"{self.g.t(dst).size});")

    def _op_transpose(self, layer: _Layer) -> None:
        node, g = layer.node, self.g
        perm = list(node.attrs["perm"])
        shape = g.t(node.inputs[0]).shape
        if len(shape) > 6:
            raise UnsupportedOpError(f"transpose of rank {len(shape)} at {node.where()}")
        in_strides, acc = [0] * len(shape), 1
        for d in reversed(range(len(shape))):
            in_strides[d] = acc
            acc *= shape[d]
        out_shape = [shape[p] for p in perm]
        strides = [in_strides[p] for p in perm]
        pad = 6 - len(shape)
        layer.comment += f", perm {perm}"
        p = self.params(layer, "edgeq_transpose_params", [
            ("dims", len(shape)), ("output_shape", out_shape + [1] * pad),
            ("input_strides", strides + [0] * pad)])
        layer.call = self._call("edgeq_transpose_s8", p, layer)

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
        layer.call = (f"status = edgeq_softmax_s8(&{p}, {self.ptr(node.inputs[0])}, "
                      f"{self.ptr(node.outputs[0])});\n"
                      f"if (status != 0) {{\n    return status;\n}}")

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
        acts = [self.ptr(n) for n in node.inputs if not g.t(n).is_constant]
        return f"{fn}(&{params}, {', '.join(acts)}, {self.ptr(node.outputs[0])});"

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
            files[k] = (KERNEL_DIR / k).read_text()
        files["README.md"] = self.readme(kernel_files)
        return CModel(self.name, files, self.plan, kernel_files, self.weight_bytes,
                      self.plan.input_size, self.plan.output_size)

    def _io_lines(self, kind: str, names: list[str], offsets: list[int]) -> list[str]:
        g, up = self.g, self.upper
        total = sum(g.t(n).size for n in names)
        lines = [f"#define {up}_{kind}_SIZE {total}"]
        if len(names) > 1:
            for i, (n, off) in enumerate(zip(names, offsets)):
                lines.append(f"#define {up}_{kind}{i}_SIZE {g.t(n).size}    "
                             f"/* {_comment(n)}: {_shape(g.t(n).shape)} */")
                lines.append(f"#define {up}_{kind}{i}_OFFSET {off}")
        return lines

    def header(self) -> str:
        g, up, name = self.g, self.upper, self.name
        ins = ", ".join(f"{_comment(n)} {_shape(g.t(n).shape)}" for n in g.inputs)
        outs = ", ".join(f"{_comment(n)} {_shape(g.t(n).shape)}" for n in g.outputs)
        lines = [
            f"/* Generated by edgeq: int8 model '{name}'.  Do not edit. */",
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
            f"/* Output: {outs} (int8). */",
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
        lines += [
            "",
            f"/* Run the model on {up}_INPUT_SIZE int8 values at `input`, write {up}_OUTPUT_SIZE int8",
            f" * values to `output`.  Returns 0 on success.  `input` and `output` must not overlap;",
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
                body.append(f"    edgeq_trace({layer.index}, {self.ptr(out)}, {g.t(out).size});")
            body.append("")
        for tensor, slot in plan.output_copies:
            self.used_regions.add("output")
            off = plan.output_offsets[slot]
            dst = "output" if off == 0 else f"output + {off}"
            body.append(f"    /* graph output {slot} is {_comment(tensor)}, stored elsewhere: copy it */")
            body.append(f"    edgeq_copy_s8({self.ptr(tensor)}, {dst}, {g.t(tensor).size});")
            body.append("")

        lines = [
            f"/* Generated by edgeq: int8 model '{name}', {len(g.nodes)} layers.  Do not edit.",
            f" * See README.md; kernels in {KERNEL_HEADER}, weights in {name}_weights.c. */",
            f'#include "{name}.h"',
            f'#include "{KERNEL_HEADER}"',
            "",
        ]
        for kind, names in (("INPUT", g.inputs), ("OUTPUT", g.outputs)):
            for i, n in enumerate(names):
                s, zp = g.t(n).quant.scalar()
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
        uses_status = any(l.node.op == "softmax" for l in self.layers)
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
            f"# `{name}`: int8 model as C99",
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
            f"/* y = {up}_OUTPUT_SCALE * (out[i] - {up}_OUTPUT_ZERO_POINT) */",
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
    for n in graph.activations():
        if graph.t(n).dtype != "int8":
            raise UnsupportedOpError(f"the C target supports int8 activations only; "
                                     f"{n} is {graph.t(n).dtype}")
    plan = plan_memory(graph)
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
