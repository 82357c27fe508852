"""Lower a quantized NCHW graph to an ONNX QDQ model: each activation T is produced in float,
quantized by QuantizeLinear to T (int8, or int16 in mixed precision) and read by consumers
through DequantizeLinear. int16 QDQ needs opset 21, so a graph with int16 activations is
written at opset 21 or later; its int64 biases are stored as int32 when they fit (else as float:
DequantizeLinear has no int64 input)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ...errors import UnsupportedOpError
from ...ir import Graph, Node
from ...ops import get_op, with_bodies
from ...files import atomic_write_bytes
from ..base import TargetProfile

DEFAULT_OPSET = 17
INT16_OPSET = 21      # first opset whose QuantizeLinear / DequantizeLinear take int16
Lowering = Callable[["_Builder", Node], None]
LOWERINGS: dict[str, Lowering] = {}


def lowers(op: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn
    return deco


def prepare(qgraph: Graph, profile: TargetProfile, options: dict) -> Graph:
    return qgraph.copy()   # ONNX keeps torch's NCHW layout


def emit(graph: Graph, out_dir: Path, profile: TargetProfile, options: dict) -> list[Path]:
    model = build_model(graph, profile.raw.get("onnx", {}).get("opset", DEFAULT_OPSET),
                        options.get("description", ""), options.get("edgeq_version", ""))
    path = Path(out_dir) / "model.onnx"
    atomic_write_bytes(path, model.SerializeToString(deterministic=True))
    return [path]


def build_model(graph: Graph, opset: int, description: str = "", version: str = "") -> onnx.ModelProto:
    if any(t.dtype == "int16" for b in with_bodies(graph) for t in b.tensors.values()):   # bodies too
        opset = max(opset, INT16_OPSET)
    b = _Builder(graph, opset)
    for name in graph.inputs:
        if graph.t(name).quant is None:       # integer inputs (token ids) enter as they are
            continue
        b.rename[name] = f"{name}_quantized"
        b.quantize_float(name, name)
    for node in graph.nodes:
        fn = LOWERINGS.get(node.op)
        if fn is None:
            raise UnsupportedOpError(f"the onnx target cannot lower op '{node.op}' at {node.where()}; "
                                     f"it supports: {', '.join(sorted(LOWERINGS))} "
                                     "(see `edgeq targets --ops` for every target's ops)")
        fn(b, node)
    outputs = []
    for name in graph.outputs:
        out = f"{name}_output"
        if graph.t(name).quant is None:     # an index output (argmax): int64, as torch returns it
            b.node("Identity", [b.ref(name)], [out])
            outputs.append(helper.make_tensor_value_info(out, TensorProto.INT64, _batched(graph.t(name).shape)))
            continue
        b.node("DequantizeLinear", [b.ref(name), *b.qparams(name)], [out])
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, _batched(graph.t(name).shape)))
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT if graph.t(n).quant is not None else TensorProto.INT32,
                                            _batched(graph.t(n).shape)) for n in graph.inputs]
    g = helper.make_graph(b.nodes, "edgeq", inputs, outputs, b.initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgeq",
                              producer_version=version, doc_string=description)
    model.ir_version = 10 if opset >= INT16_OPSET else 8
    helper.set_model_props(model, {"edgeq_version": version, "description": description})
    onnx.checker.check_model(model, full_check=True)
    return model


def _batched(shape: tuple[int, ...]) -> list:
    return ["N", *shape[1:]]


class _Builder:
    def __init__(self, graph: Graph, opset: int = DEFAULT_OPSET) -> None:
        self.graph = graph
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._shared: dict[tuple, str] = {}   # (dtype, shape, bytes) -> initializer name
        self._alias: dict[str, str] = {}      # constant asked for -> initializer holding its value
        self.rename: dict[str, str] = {}   # IR tensor -> ONNX name where they differ

    def ref(self, tensor: str) -> str:
        return self.rename.get(tensor, tensor)

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs) -> None:
        # no node name: ONNX makes it optional, and ours would only repeat the output and op type
        self.nodes.append(helper.make_node(op, inputs, outputs, **attrs))

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer written once per distinct value (dtype, shape and bytes): a later equal
        constant (a zero bias, a scale or zero point repeated across tensors, a shape) is the
        first one's initializer, whose name it returns. Initializers are immutable, so readers
        may share one."""
        if name in self._alias:
            return self._alias[name]
        value = np.asarray(value, order="C")   # 0-d stays 0-d
        key = (value.dtype.str, value.shape, value.tobytes())
        if key not in self._shared:
            self._names.add(name)
            self.initializers.append(numpy_helper.from_array(value, name))
            self._shared[key] = name
        self._alias[name] = self._shared[key]
        return self._alias[name]

    def qparams(self, tensor: str, dequantize: bool = False) -> list[str]:
        """Scale and zero-point initializers of a tensor (per-axis when the tensor has an axis),
        shared between tensors of equal parameters (``const``); a scalar zero point is named for
        its value. A constant int32 bias's all-zero zero point is left out of its DequantizeLinear
        (``dequantize``; it defaults to 0): int8 weights keep theirs, without which onnxruntime
        no longer fuses QDQ Gemm / MatMul into QGemm / MatMulIntegerToFloat, and QuantizeLinear
        needs its zero point to fix its output type."""
        t = self.graph.t(tensor)
        q = t.quant
        # int64: a 16x8 bias, written as int32 when it fits (_int64_bias)
        dtype = {"int8": np.int8, "int32": np.int32, "int16": np.int16, "int64": np.int32}[t.dtype]
        if q.per_channel:
            scale, zp = q.scale.astype(np.float32), q.zero_point.astype(dtype)
        else:
            scale, zp = np.array(q.scale[0], np.float32), np.array(q.zero_point[0], dtype)
        names = [self.const(f"{tensor}_scale", scale)]
        if dequantize and t.dtype in ("int32", "int64") and not np.any(zp):
            return names
        zp_name = (f"{tensor}_zero_point" if q.per_channel
                   else f"zp_{np.dtype(dtype).name}_{int(zp)}".replace("-", "m"))
        return names + [self.const(zp_name, zp)]

    def dq(self, tensor: str) -> str:
        """Float view of a quantized tensor (a constant's DequantizeLinear is emitted once); an
        integer activation (a mask being reshaped) is read as it is."""
        if self.graph.t(tensor).quant is None and not self.graph.t(tensor).is_constant:
            return self.ref(tensor)
        out = f"{tensor}_dq"
        if out in self._names:
            return out
        self._names.add(out)
        t = self.graph.t(tensor)
        if t.is_constant and t.dtype == "int64":
            return self._int64_bias(tensor, out)
        src = self.const(f"{tensor}_quantized", t.data) if t.is_constant else self.ref(tensor)
        attrs = {"axis": t.quant.axis} if t.quant.per_channel else {}
        self.node("DequantizeLinear", [src, *self.qparams(tensor, dequantize=t.is_constant)], [out], **attrs)
        return out

    def _int64_bias(self, tensor: str, out: str) -> str:
        """A 16x8 layer's int64 bias: DequantizeLinear from int32 when every value fits, else
        the dequantized float values."""
        t = self.graph.t(tensor)
        if np.abs(t.data).max(initial=0) < 2**31:
            src = self.const(f"{tensor}_quantized", t.data.astype(np.int32))
            attrs = {"axis": t.quant.axis} if t.quant.per_channel else {}
            self.node("DequantizeLinear", [src, *self.qparams(tensor, dequantize=True)], [out], **attrs)
        else:
            self.initializers.append(numpy_helper.from_array(
                (t.data.astype(np.float64) * t.quant.scale.astype(np.float64)).astype(np.float32), out))
        return out

    def quantize_float(self, float_name: str, tensor: str) -> None:
        """QuantizeLinear of a float value into the IR tensor ``tensor`` (int8); an integer
        tensor (no quantization) is the value itself."""
        if self.graph.t(tensor).quant is None:
            self.node("Identity", [float_name], [self.ref(tensor)])
            return
        self.node("QuantizeLinear", [float_name, *self.qparams(tensor)], [self.ref(tensor)])

    def finish(self, node: Node, float_out: str) -> None:
        """Apply the node's fused activation in float, then quantize into its output tensor."""
        act = node.attrs.get("activation")
        if act is not None:
            clipped = f"{node.outputs[0]}_act"
            if act["min"] == 0.0 and act["max"] is None:
                self.node("Relu", [float_out], [clipped])
            else:
                lo = self.const(f"{node.outputs[0]}_clip_min", np.array(-np.inf if act["min"] is None else act["min"], np.float32))
                hi = self.const(f"{node.outputs[0]}_clip_max", np.array(np.inf if act["max"] is None else act["max"], np.float32))
                self.node("Clip", [float_out, lo, hi], [clipped])
            float_out = clipped
        self.quantize_float(float_out, node.outputs[0])


def _float_out(node: Node) -> str:
    return f"{node.outputs[0]}_float"


@lowers("conv2d")
def _conv(b: _Builder, node: Node) -> None:
    x, w, bias = node.inputs
    a = node.attrs
    pt, pl, pb, pr = a["padding"]
    kh, kw = b.graph.t(w).shape[2:]
    b.node("Conv", [b.dq(x), b.dq(w), b.dq(bias)], [_float_out(node)], kernel_shape=[kh, kw],
           strides=list(a["stride"]), pads=[pt, pl, pb, pr], dilations=list(a["dilation"]), group=a["groups"])
    b.finish(node, _float_out(node))


@lowers("conv_transpose2d")
def _conv_transpose(b: _Builder, node: Node) -> None:
    """ConvTranspose with torch's semantics; the IR's OIHW filters are dequantized (per output
    channel) and rearranged in float to ONNX's (torch's) [I, O/groups, kH, kW] weight."""
    x, w, bias = node.inputs
    a, y = node.attrs, node.outputs[0]
    o, cg, kh, kw = b.graph.t(w).shape
    g = a["groups"]
    wt = f"{y}_weight_iohw"
    if g == 1:
        b.node("Transpose", [b.dq(w)], [wt], perm=[1, 0, 2, 3])
    else:
        b.node("Reshape", [b.dq(w), b.const(f"{y}_w5", np.array([g, o // g, cg, kh, kw], np.int64))], [f"{y}_w5d"])
        b.node("Transpose", [f"{y}_w5d"], [f"{y}_w5t"], perm=[0, 2, 1, 3, 4])
        b.node("Reshape", [f"{y}_w5t", b.const(f"{y}_w4", np.array([g * cg, o // g, kh, kw], np.int64))], [wt])
    b.node("ConvTranspose", [b.dq(x), wt, b.dq(bias)], [_float_out(node)], kernel_shape=[kh, kw],
           strides=list(a["stride"]), pads=list(a["padding"]), output_padding=list(a["output_padding"]),
           dilations=list(a["dilation"]), group=g)
    b.finish(node, _float_out(node))


@lowers("linear")
def _linear(b: _Builder, node: Node) -> None:
    """Gemm on 2-D inputs; MatMul with the transposed weight and Add on [batch, ..., K] ones
    (a linear over a sequence: Gemm takes matrices only)."""
    x, w, bias = node.inputs
    if len(b.graph.t(x).shape) == 2:
        b.node("Gemm", [b.dq(x), b.dq(w), b.dq(bias)], [_float_out(node)], transB=1)
    else:                              # x [N, ..., K]: Gemm takes matrices only
        wt = f"{w}_dq_t"
        if wt not in b._names:
            b._names.add(wt)
            b.node("Transpose", [b.dq(w)], [wt], perm=[1, 0])
        b.node("MatMul", [b.dq(x), wt], [f"{node.outputs[0]}_matmul"])
        b.node("Add", [f"{node.outputs[0]}_matmul", b.dq(bias)], [_float_out(node)])
    b.finish(node, _float_out(node))


def _elementwise(onnx_op: str):
    def lower(b: _Builder, node: Node) -> None:
        b.node(onnx_op, [b.dq(node.inputs[0]), b.dq(node.inputs[1])], [_float_out(node)])
        b.finish(node, _float_out(node))
    return lower


lowers("add")(_elementwise("Add"))
lowers("sub")(_elementwise("Sub"))
lowers("mul")(_elementwise("Mul"))
lowers("maximum")(_elementwise("Max"))
lowers("minimum")(_elementwise("Min"))


@lowers("clamp")
def _clamp(b: _Builder, node: Node) -> None:
    b.finish(node, b.dq(node.inputs[0]))


@lowers("requantize")
def _requantize(b: _Builder, node: Node) -> None:
    """int8 <-> int16: DequantizeLinear, then QuantizeLinear at the output's type."""
    b.finish(node, b.dq(node.inputs[0]))


@lowers("max_pool2d")
def _max_pool(b: _Builder, node: Node) -> None:
    a = node.attrs
    pt, pl, pb, pr = a["padding"]
    b.node("MaxPool", [b.dq(node.inputs[0])], [_float_out(node)], kernel_shape=list(a["kernel"]),
           strides=list(a["stride"]), pads=[pt, pl, pb, pr], ceil_mode=int(a.get("ceil_mode", False)))
    b.finish(node, _float_out(node))


@lowers("avg_pool2d")
def _avg_pool(b: _Builder, node: Node) -> None:
    a = node.attrs
    x = b.graph.t(node.inputs[0])
    pt, pl, pb, pr = a["padding"]
    if tuple(a["kernel"]) == tuple(x.shape[2:]) and not any(a["padding"]):
        b.node("GlobalAveragePool", [b.dq(node.inputs[0])], [_float_out(node)])
    else:
        b.node("AveragePool", [b.dq(node.inputs[0])], [_float_out(node)], kernel_shape=list(a["kernel"]),
               strides=list(a["stride"]), pads=[pt, pl, pb, pr], count_include_pad=0,
               ceil_mode=int(a.get("ceil_mode", False)))
    b.finish(node, _float_out(node))


@lowers("reshape")
def _reshape(b: _Builder, node: Node) -> None:
    shape = b.const(f"{node.outputs[0]}_shape", np.array([0, *node.attrs["shape"]], np.int64))
    b.node("Reshape", [b.dq(node.inputs[0]), shape], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("transpose")
def _transpose(b: _Builder, node: Node) -> None:
    b.node("Transpose", [b.dq(node.inputs[0])], [_float_out(node)], perm=list(node.attrs["perm"]))
    b.finish(node, _float_out(node))


@lowers("softmax")
def _softmax(b: _Builder, node: Node) -> None:
    b.node("Softmax", [b.dq(node.inputs[0])], [_float_out(node)], axis=node.attrs["axis"])
    b.finish(node, _float_out(node))


@lowers("log_softmax")
def _log_softmax(b: _Builder, node: Node) -> None:
    b.node("LogSoftmax", [b.dq(node.inputs[0])], [_float_out(node)], axis=node.attrs["axis"])
    b.finish(node, _float_out(node))


@lowers("mean")
def _mean(b: _Builder, node: Node) -> None:
    axes, keep = [int(a) for a in node.attrs["axes"]], int(node.attrs["keepdim"])
    if b.opset >= 18:    # axes became an input in opset 18
        ax = b.const(f"{node.outputs[0]}_axes", np.array(axes, np.int64))
        b.node("ReduceMean", [b.dq(node.inputs[0]), ax], [_float_out(node)], keepdims=keep)
    else:
        b.node("ReduceMean", [b.dq(node.inputs[0])], [_float_out(node)], axes=axes, keepdims=keep)
    b.finish(node, _float_out(node))


@lowers("argmax")
def _argmax(b: _Builder, node: Node) -> None:
    """ArgMax of the dequantized input (int64 indices; first index on ties, like the IR)."""
    b.node("ArgMax", [b.dq(node.inputs[0])], [b.ref(node.outputs[0])], axis=int(node.attrs["axis"]),
           keepdims=int(node.attrs["keepdim"]), select_last_index=0)


def _unary(onnx_op: str, **attrs):
    def lower(b: _Builder, node: Node) -> None:
        b.node(onnx_op, [b.dq(node.inputs[0])], [_float_out(node)], **attrs)
        b.finish(node, _float_out(node))
    return lower


lowers("sigmoid")(_unary("Sigmoid"))
lowers("tanh")(_unary("Tanh"))
lowers("hardswish")(_unary("HardSwish"))


@lowers("leaky_relu")
def _leaky_relu(b: _Builder, node: Node) -> None:
    b.node("LeakyRelu", [b.dq(node.inputs[0])], [_float_out(node)], alpha=float(node.attrs["alpha"]))
    b.finish(node, _float_out(node))


@lowers("prelu")
def _prelu(b: _Builder, node: Node) -> None:
    b.node("PRelu", [b.dq(node.inputs[0]), b.dq(node.inputs[1])], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("gelu")
def _gelu(b: _Builder, node: Node) -> None:
    """GELU from opset-13 ops (ONNX's Gelu needs opset 20)."""
    x, y = b.dq(node.inputs[0]), node.outputs[0]
    c = lambda n, v: b.const(f"{y}_{n}", np.array(v, np.float32))  # noqa: E731
    if node.attrs.get("approximate", "none") == "tanh":
        b.node("Mul", [x, x], [f"{y}_x2"])
        b.node("Mul", [f"{y}_x2", x], [f"{y}_x3"])
        b.node("Mul", [f"{y}_x3", c("k", 0.044715)], [f"{y}_kx3"])
        b.node("Add", [x, f"{y}_kx3"], [f"{y}_inner"])
        b.node("Mul", [f"{y}_inner", c("s", float(np.sqrt(2.0 / np.pi)))], [f"{y}_arg"])
        b.node("Tanh", [f"{y}_arg"], [f"{y}_t"])
    else:
        b.node("Mul", [x, c("rsqrt2", float(1.0 / np.sqrt(2.0)))], [f"{y}_arg"])
        b.node("Erf", [f"{y}_arg"], [f"{y}_t"])
    b.node("Add", [f"{y}_t", c("one", 1.0)], [f"{y}_1pt"])
    b.node("Mul", [x, f"{y}_1pt"], [f"{y}_x1pt"])
    b.node("Mul", [f"{y}_x1pt", c("half", 0.5)], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("concat")
def _concat(b: _Builder, node: Node) -> None:
    """Concat; a constant part (a class token, batch 1) is expanded to the activations' batch
    first, as the IR repeats it."""
    y = node.outputs[0]
    act = next((i for i in node.inputs if not b.graph.t(i).is_constant), None)
    parts = []
    for i in node.inputs:
        t = b.graph.t(i)
        if not t.is_constant or act is None:
            parts.append(b.dq(i))
            continue
        b.node("Shape", [b.dq(act)], [f"{y}_{i}_act_shape"], start=0, end=1)
        b.node("Concat", [f"{y}_{i}_act_shape", b.const(f"{y}_{i}_rest", np.array(t.shape[1:], np.int64))],
               [f"{y}_{i}_batch_shape"], axis=0)
        b.node("Expand", [b.dq(i), f"{y}_{i}_batch_shape"], [f"{y}_{i}_batched"])
        parts.append(f"{y}_{i}_batched")
    b.node("Concat", parts, [_float_out(node)], axis=int(node.attrs["axis"]))
    b.finish(node, _float_out(node))


@lowers("pad")
def _pad(b: _Builder, node: Node) -> None:
    """Pad: constant (the float fill value), reflect, or replicate (ONNX's "edge")."""
    pads = node.attrs["pads"]
    y = node.outputs[0]
    p = b.const(f"{y}_pads", np.array([a for a, _ in pads] + [c for _, c in pads], np.int64))
    mode = node.attrs.get("mode", "constant")
    if mode == "constant":
        v = b.const(f"{y}_pad_value", np.array(node.attrs.get("value", 0.0), np.float32))
        b.node("Pad", [b.dq(node.inputs[0]), p, v], [_float_out(node)], mode="constant")
    else:
        b.node("Pad", [b.dq(node.inputs[0]), p], [_float_out(node)], mode="reflect" if mode == "reflect" else "edge")
    b.finish(node, _float_out(node))


@lowers("slice")
def _slice(b: _Builder, node: Node) -> None:
    a, y = node.attrs, node.outputs[0]
    axes = [i for i in range(1, len(a["begin"]))]
    ins = [b.dq(node.inputs[0])] + [b.const(f"{y}_{k}", np.array([a[k2][i] for i in axes], np.int64))
                                    for k, k2 in (("starts", "begin"), ("ends", "end"))]
    ins += [b.const(f"{y}_axes", np.array(axes, np.int64)),
            b.const(f"{y}_steps", np.array([a["strides"][i] for i in axes], np.int64))]
    b.node("Slice", ins, [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("resize_nearest")
def _resize_nearest(b: _Builder, node: Node) -> None:
    """Nearest upsampling as two Gathers with torch's own source indices (exact for any size)."""
    ih, iw = get_op("resize_nearest").indices(node, b.graph)
    y = node.outputs[0]
    b.node("Gather", [b.dq(node.inputs[0]), b.const(f"{y}_rows", ih.astype(np.int64))], [f"{y}_rows_g"], axis=2)
    b.node("Gather", [f"{y}_rows_g", b.const(f"{y}_cols", iw.astype(np.int64))], [_float_out(node)], axis=3)
    b.finish(node, _float_out(node))


@lowers("resize_bilinear")
def _resize_bilinear(b: _Builder, node: Node) -> None:
    """Resize (linear) with torch's coordinate rule: half_pixel (source positions clamped at 0 by
    ORT as by torch) or align_corners; output sizes from the input's N, C and the IR's H, W."""
    x, y = b.dq(node.inputs[0]), node.outputs[0]
    b.node("Shape", [x], [f"{y}_in_shape"])
    b.node("Slice", [f"{y}_in_shape", b.const(f"{y}_nc_start", np.array([0], np.int64)),
                     b.const(f"{y}_nc_end", np.array([2], np.int64))], [f"{y}_nc"])
    b.node("Concat", [f"{y}_nc", b.const(f"{y}_hw", np.array(node.attrs["size"], np.int64))], [f"{y}_sizes"], axis=0)
    mode = "align_corners" if node.attrs["align_corners"] else "half_pixel"
    b.node("Resize", [x, "", "", f"{y}_sizes"], [_float_out(node)], mode="linear",
           coordinate_transformation_mode=mode)
    b.finish(node, _float_out(node))


_ONNX_TYPES = {"int8": TensorProto.INT8, "int16": TensorProto.INT16, "int32": TensorProto.INT32}


@lowers("scan")
def _scan(b: _Builder, node: Node) -> None:
    """A recurrent layer as ONNX Scan: the body is lowered like any graph (QDQ around each op,
    integers between them), the states first and the sequences scanned along axis 1."""
    body, k = node.attrs["body"], node.attrs["sequences"]
    sub = _Builder(body, b.opset)
    for n in body.nodes:
        LOWERINGS[n.op](sub, n)
    stacked = [f"{body.outputs[i]}_step" for i in node.attrs["stacked"]]
    for i, name in zip(node.attrs["stacked"], stacked):
        sub.node("Identity", [sub.ref(body.outputs[i])], [name])

    def info(name: str, tensor: str) -> onnx.ValueInfoProto:
        t = body.t(tensor)
        return helper.make_tensor_value_info(name, _ONNX_TYPES[t.dtype], ["N", *t.shape[1:]])

    inputs = [info(sub.ref(n), n) for n in body.inputs[k:] + body.inputs[:k]]
    outputs = [info(sub.ref(o), o) for o in body.outputs] + \
              [info(name, body.outputs[i]) for i, name in zip(node.attrs["stacked"], stacked)]
    graph = helper.make_graph(sub.nodes, f"{node.name}_body", inputs, outputs, sub.initializers)
    sequences = [b.ref(n) for n in node.inputs[:k]]
    states = [_batched_state(b, node, n, sequences[0]) for n in node.inputs[k:]]
    b.node("Scan", [*states, *sequences], [b.ref(o) for o in node.outputs], body=graph, num_scan_inputs=k,
           scan_input_axes=[1] * k, scan_output_axes=[1] * len(stacked),
           **({"scan_input_directions": [1] * k, "scan_output_directions": [1] * len(stacked)}
              if node.attrs.get("reverse") else {}))


def _batched_state(b: _Builder, node: Node, state: str, sequence: str) -> str:
    """An initial state with the sequence's batch size: a constant state (batch 1) expanded."""
    t = b.graph.t(state)
    if not t.is_constant:
        return b.ref(state)
    init = b.const(f"{state}_quantized", t.data)
    shape = f"{state}_batch_shape"
    if shape not in b._names:
        b._names.add(shape)
        b.node("Shape", [sequence], [f"{shape}_full"], start=0, end=1)
        b.node("Concat", [f"{shape}_full", b.const(f"{state}_tail", np.array(t.shape[1:], np.int64))], [shape], axis=0)
        b.node("Expand", [init, shape], [f"{state}_batched"])
    return f"{state}_batched"


# --- arithmetic, gathers, products, normalization (float ops between QDQ pairs) -------------

lowers("abs")(_unary("Abs"))

lowers("batch_matmul")(_elementwise("MatMul"))


@lowers("squared_difference")
def _squared_difference(b: _Builder, node: Node) -> None:
    y = node.outputs[0]
    b.node("Sub", [b.dq(node.inputs[0]), b.dq(node.inputs[1])], [f"{y}_diff"])
    b.node("Mul", [f"{y}_diff", f"{y}_diff"], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("sqrt")
def _sqrt(b: _Builder, node: Node) -> None:
    """sqrt(max(x, 0)), the IR's definition (ORT's Sqrt of a negative is NaN)."""
    y = node.outputs[0]
    b.node("Relu", [b.dq(node.inputs[0])], [f"{y}_nonnegative"])
    b.node("Sqrt", [f"{y}_nonnegative"], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("rsqrt")
def _rsqrt(b: _Builder, node: Node) -> None:
    """1 / sqrt(max(x, tiny)) (ONNX has no Rsqrt)."""
    y = node.outputs[0]
    tiny = b.const(f"{y}_tiny", np.array(np.finfo(np.float32).tiny, np.float32))
    b.node("Max", [b.dq(node.inputs[0]), tiny], [f"{y}_positive"])
    b.node("Sqrt", [f"{y}_positive"], [f"{y}_sqrt"])
    b.node("Reciprocal", [f"{y}_sqrt"], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("div")
def _div(b: _Builder, node: Node) -> None:
    """a / b, 0 where b is 0 (the IR's definition)."""
    y = node.outputs[0]
    den = b.dq(node.inputs[1])
    zero = b.const(f"{y}_zero", np.array(0.0, np.float32))
    b.node("Equal", [den, zero], [f"{y}_den_is_zero"])
    b.node("Div", [b.dq(node.inputs[0]), den], [f"{y}_quotient"])
    b.node("Where", [f"{y}_den_is_zero", zero, f"{y}_quotient"], [_float_out(node)])
    b.finish(node, _float_out(node))


@lowers("cast")
def _cast(b: _Builder, node: Node) -> None:
    """The integers as floats, quantized at scale 1, zero point 0 (QuantizeLinear saturates)."""
    b.node("Cast", [b.ref(node.inputs[0])], [_float_out(node)], to=TensorProto.FLOAT)
    b.finish(node, _float_out(node))


@lowers("gather")
def _gather(b: _Builder, node: Node) -> None:
    idx = b.const(f"{node.outputs[0]}_indices", b.graph.t(node.inputs[1]).data.astype(np.int64))
    b.node("Gather", [b.dq(node.inputs[0]), idx], [_float_out(node)], axis=int(node.attrs["axis"]))
    b.finish(node, _float_out(node))


@lowers("embedding")
def _embedding(b: _Builder, node: Node) -> None:
    """Rows of the dequantized table at the ids clamped to the table (the IR's definition)."""
    table, ids = node.inputs
    y = node.outputs[0]
    lo = b.const(f"{y}_id_min", np.array(0, np.int32))
    hi = b.const(f"{y}_id_max", np.array(b.graph.t(table).shape[0] - 1, np.int32))
    b.node("Clip", [b.ref(ids), lo, hi], [f"{y}_ids"])
    b.node("Gather", [b.dq(table), f"{y}_ids"], [_float_out(node)], axis=0)
    b.finish(node, _float_out(node))


def _reduce(b: _Builder, node: Node, op: str, axes: list[int], keep: int, src: str, out: str,
            axes_input_from: int) -> None:
    """ONNX reductions took ``axes`` as an attribute before opset ``axes_input_from``, then an input."""
    if b.opset >= axes_input_from:
        ax = b.const(f"{out}_axes", np.array(axes, np.int64))
        b.node(op, [src, ax], [out], keepdims=keep)
    else:
        b.node(op, [src], [out], axes=axes, keepdims=keep)


@lowers("sum")
def _sum(b: _Builder, node: Node) -> None:
    _reduce(b, node, "ReduceSum", [int(a) for a in node.attrs["axes"]], int(node.attrs["keepdim"]),
            b.dq(node.inputs[0]), _float_out(node), 13)
    b.finish(node, _float_out(node))


@lowers("reduce_max")
def _reduce_max(b: _Builder, node: Node) -> None:
    _reduce(b, node, "ReduceMax", [int(a) for a in node.attrs["axes"]], int(node.attrs["keepdim"]),
            b.dq(node.inputs[0]), _float_out(node), 18)
    b.finish(node, _float_out(node))


@lowers("l2_normalize")
def _l2_normalize(b: _Builder, node: Node) -> None:
    """x / max(||x||_2, 1e-12) along the axis (F.normalize)."""
    x, y = b.dq(node.inputs[0]), node.outputs[0]
    _reduce(b, node, "ReduceL2", [int(node.attrs["axis"])], 1, x, f"{y}_norm", 18)
    eps = b.const(f"{y}_eps", np.array(1e-12, np.float32))
    b.node("Max", [f"{y}_norm", eps], [f"{y}_norm_eps"])
    b.node("Div", [x, f"{y}_norm_eps"], [_float_out(node)])
    b.finish(node, _float_out(node))
