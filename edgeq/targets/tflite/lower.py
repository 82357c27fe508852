"""Lower a quantized NHWC edgeq graph to a TFLite model (ModelT of the generated schema).

Every IR tensor keeps its name, shape (batch 1), int8 quantization and, for constants, its
data; every node becomes a builtin operator whose int8 kernel computes exactly what the node's
integer reference computes, plus glue operators where TFLite needs them:

* ``linear`` becomes a 1x1 CONV_2D on a [1, 1, M, K] view (RESHAPEs around it, dropped between
  consecutive linears): LiteRT's reference FULLY_CONNECTED requantizes in double precision
  (round(acc * s_in * s_w / s_out), LiteRT#8567) while TFLite Micro and every other reference
  int8 kernel use MultiplyByQuantizedMultiplier, so no FULLY_CONNECTED is bit-exact in both.
  ``linear_op="fully_connected"`` (target profile table ``[tflite]``) writes the native op;
* PAD / PADV2 before a convolution or max pool whose explicit padding is neither TFLite's SAME
  nor VALID (PAD fills with the zero point = a zero contribution; PADV2 fills max pools with
  -128, the identity of max);
* MAXIMUM / MINIMUM for clamps that are no fused activation TFLite knows (RELU, RELU6,
  RELU_N1_TO_1), and QUANTIZE (int8 -> int8 requantization) in front of them when the clamp
  changes the quantization;
* TRANSPOSE around SOFTMAX / LOG_SOFTMAX over another axis than the last, TRANSPOSE / RESHAPE
  around a MEAN over more than two axes (TFLite Micro reduces at most two), RESHAPE after an
  ARG_MAX with keepdim, STRIDED_SLICE after a TRANSPOSE_CONV whose torch padding is not VALID;
* QUANTIZE / DEQUANTIZE at the boundary for ``io='float'`` (argmax's int32 indices stay int32;
  an int16 output is dequantized from int16).

16x8 mixed precision (``edgeq.passes.precision``): int16 activations are INT16 tensors (zero
point 0) and their layers TFLite's 16x8 kernels: CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
with int8 weights and INT64 biases, ADD with ``pot_scale_int16`` false (the general-scale
algorithm the reference implements), MAX_POOL_2D / AVERAGE_POOL_2D / RESHAPE / TRANSPOSE / PAD
in int16 (PADV2 fills max pools with -32768, MAXIMUM / MINIMUM clamp with int16 bounds), and
``requantize`` is QUANTIZE between int8 and int16 (TFLite's Requantize). TFLite Micro and
LiteRT's reference kernels both compute these exactly as the reference (LiteRT's reference
int16 FULLY_CONNECTED excepted: it requantizes in double, like its int8 one).

Operator versions follow LiteRT's ``tools/versioning/op_version.cc`` for int8 operands, and
for int16 ones: CONV_2D 4, DEPTHWISE_CONV_2D 5, FULLY_CONNECTED 7, ADD 3 (general scale),
pools 3, QUANTIZE 2 (int16 output), DEQUANTIZE 3, MAXIMUM / MINIMUM 4, TRANSPOSE 5.
"""
from __future__ import annotations

import json
from typing import Callable

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Graph, Node, QuantParams
from .schema import SCHEMA_VERSION, TENSOR_TYPES, AlignedBufferT, fb

BO = fb.BuiltinOperator
Act = fb.ActivationFunctionType
Lowering = Callable[["ModelBuilder", Node], None]
LOWERINGS: dict[str, Lowering] = {}
INT8_MIN, INT8_MAX = -128, 127
#: how ``linear`` is lowered: a 1x1 CONV_2D (bit-exact in TFLite Micro and LiteRT reference
#: kernels) or the native FULLY_CONNECTED (LiteRT's reference kernel requantizes it in float)
LINEAR_OPS = ("conv_2d", "fully_connected")


#: IR ops this target deliberately does not lower, with the reason (named in the error)
REFUSALS: dict[str, str] = {}


def lowers(op: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn
    return deco


def refuses(op: str, why: str) -> None:
    """Record that ``op`` is not lowered on purpose, and why (the unsupported-op error says it)."""
    REFUSALS[op] = why


def supported_ops() -> list[str]:
    """Model ops this target lowers (ops only passes insert, such as ``requantize``, not listed)."""
    from ...ops import get_op
    return sorted(op for op in LOWERINGS if not get_op(op).internal)


def _limits(dtype: str) -> tuple[int, int]:
    """The integer range of an activation type (int8 or int16: 16x8 layers)."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def check_supported(graph: Graph) -> None:
    """Raise UnsupportedOpError for the first node the TFLite target cannot express."""
    for node in graph.nodes:
        if node.op == "conv_transpose2d" and (node.attrs["groups"] != 1 or tuple(node.attrs["dilation"]) != (1, 1)):
            raise UnsupportedOpError(
                f"the tflite target cannot lower op 'conv_transpose2d' at {node.where()} with groups="
                f"{node.attrs['groups']}, dilation={tuple(node.attrs['dilation'])}: TFLite's TRANSPOSE_CONV has "
                "neither (the onnx target lowers it; see `edgeq targets --ops`)")
        if node.op not in LOWERINGS:
            why = REFUSALS.get(node.op, "")
            raise UnsupportedOpError(
                f"the tflite target cannot lower op '{node.op}' at {node.where()}"
                f"{': ' + why if why else ''}; it supports: {', '.join(supported_ops())} "
                "(see `edgeq targets --ops` for every target's ops)")


def build_model(graph: Graph, io: str = "int8", description: str = "", version: str = "",
                linear_op: str = "conv_2d", extra_metadata: dict | None = None) -> fb.ModelT:
    if not graph.quantized or graph.layout != "nhwc":
        raise ValueError("the tflite lowering takes the quantized NHWC graph from prepare()")
    if io not in ("int8", "float"):
        raise ValueError(f"io must be 'int8' or 'float', not {io!r}")
    if linear_op not in LINEAR_OPS:
        raise ValueError(f"linear_op must be one of {', '.join(LINEAR_OPS)}, not {linear_op!r}")
    check_supported(graph)
    b = ModelBuilder(graph, linear_op)
    model_inputs = []
    for name in graph.inputs:
        if io == "float":
            t = graph.t(name)
            f = b.add_tensor(f"{name}_float", t.shape, "float32")
            b.op(BO.QUANTIZE, [f], [b.tensor(name)], version=2 if t.dtype == "int16" else 1)
            model_inputs.append(f)
        else:
            model_inputs.append(b.tensor(name))
    for node in graph.nodes:
        LOWERINGS[node.op](b, node)
    model_outputs = []
    for name in graph.outputs:
        if io == "float" and graph.t(name).quant is not None:   # argmax indices stay int32
            f = b.add_tensor(f"{name}_float", graph.t(name).shape, "float32")
            b.op(BO.DEQUANTIZE, [b.tensor(name)], [f], version=3 if graph.t(name).dtype == "int16" else 2)
            model_outputs.append(f)
        else:
            model_outputs.append(b.tensor(name))
    meta = {"producer": "edgeq", "edgeq_version": version, "description": description, "io": io,
            "linear_op": linear_op,
            "input_layout": graph.meta.get("input_layout", "nhwc"), **(extra_metadata or {})}
    return b.finish(model_inputs, model_outputs, description, meta)


class ModelBuilder:
    """Accumulates tensors, buffers, operator codes and operators of one subgraph."""

    def __init__(self, graph: Graph, linear_op: str = "conv_2d") -> None:
        self.g = graph
        self.linear_op = linear_op
        self.tensors: list[fb.TensorT] = []
        self.index: dict[str, int] = {}          # IR tensor name -> tensor index
        self.info: list[tuple[tuple[int, ...], str, QuantParams | None]] = []   # shape, dtype, quant
        #: IR 2-D/3-D activations that exist only as a [1, 1, M, K] tensor (linear -> linear)
        self.conv_view: dict[str, int] = {}
        self.names: set[str] = set()
        self.buffers: list[fb.BufferT] = [AlignedBufferT()]   # buffer 0: the empty sentinel
        self.opcodes: list[fb.OperatorCodeT] = []
        self.opcode_index: dict[tuple[int, int], int] = {}
        self.operators: list[fb.OperatorT] = []

    # -- tensors ---------------------------------------------------------------------
    def tensor(self, name: str) -> int:
        """Index of the IR tensor ``name`` (created on first use, with its data if constant)."""
        if name in self.index:
            return self.index[name]
        t = self.g.t(name)
        if t.quant is None and t.dtype not in ("float32", "int32"):   # int32: argmax indices
            raise UnsupportedOpError(f"tensor '{name}' ({t.dtype}) has no quantization parameters")
        if t.is_constant and t.quant is None:
            raise UnsupportedOpError(f"constant '{name}' is not quantized; the tflite target needs "
                                     "integer constants")
        idx = self.add_tensor(name, t.shape, t.dtype, t.quant, t.data)
        self.index[name] = idx
        return idx

    def add_tensor(self, name: str, shape: tuple[int, ...], dtype: str, quant: QuantParams | None = None,
                   data: np.ndarray | None = None) -> int:
        tt = fb.TensorT()
        tt.name = self._unique(name)
        tt.shape = np.asarray(shape, dtype=np.int32)
        tt.type = TENSOR_TYPES[dtype]
        tt.hasRank = True
        if quant is not None:
            q = fb.QuantizationParametersT()
            q.scale = np.asarray(quant.scale, dtype=np.float32)
            q.zeroPoint = np.asarray(quant.zero_point, dtype=np.int64)
            q.quantizedDimension = int(quant.axis) if quant.axis is not None else 0
            tt.quantization = q
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(np.dtype(dtype).newbyteorder("<")))
            if tuple(arr.shape) != tuple(shape):
                arr = arr.reshape(shape)
            buf = AlignedBufferT()
            buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
            self.buffers.append(buf)
            tt.buffer = len(self.buffers) - 1
        self.tensors.append(tt)
        self.info.append((tuple(int(d) for d in shape), dtype, quant))
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, quant: QuantParams | None = None) -> int:
        data = np.asarray(data)
        return self.add_tensor(name, tuple(data.shape), str(data.dtype), quant, data)

    def like(self, name: str, suffix: str) -> int:
        """A new activation tensor shaped like IR tensor ``name`` (glue between operators)."""
        return self.like_index(self.tensor(name), suffix)

    def _unique(self, name: str) -> str:
        base, i = name, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    # -- operators -------------------------------------------------------------------
    def op(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
           options: object | None = None, version: int = 1) -> None:
        key = (code, version)
        if key not in self.opcode_index:
            oc = fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, BO.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = version
            self.opcode_index[key] = len(self.opcodes)
            self.opcodes.append(oc)
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode_index[key]
        o.inputs = np.asarray(inputs, dtype=np.int32)
        o.outputs = np.asarray(outputs, dtype=np.int32)
        if options is not None:
            o.builtinOptionsType = options_type
            o.builtinOptions = options
        self.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int], description: str, meta: dict) -> fb.ModelT:
        sg = fb.SubGraphT()
        sg.tensors = self.tensors
        sg.inputs = np.asarray(inputs, dtype=np.int32)
        sg.outputs = np.asarray(outputs, dtype=np.int32)
        sg.operators = self.operators
        sg.name = "main"
        sig = fb.SignatureDefT()
        sig.signatureKey = "serving_default"
        sig.subgraphIndex = 0
        sig.inputs = [_tensor_map(n, i) for n, i in zip(self.g.inputs, inputs)]
        sig.outputs = [_tensor_map(n, i) for n, i in zip(self.g.outputs, outputs)]
        m = fb.ModelT()
        m.version = SCHEMA_VERSION
        m.operatorCodes = self.opcodes
        m.subgraphs = [sg]
        m.description = description or "edgeq int8 model"
        payload = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode("utf-8")
        buf = AlignedBufferT()
        buf.data = np.frombuffer(payload, dtype=np.uint8)
        self.buffers.append(buf)
        md = fb.MetadataT()
        md.name = "edgeq"
        md.buffer = len(self.buffers) - 1
        m.metadata = [md]
        m.buffers = self.buffers
        m.signatureDefs = [sig]
        return m

    # -- shared lowering helpers -----------------------------------------------------
    def output_with_activation(self, node: Node, dst: int | None = None) -> tuple[int, int, Callable[[], None]]:
        """(fused activation code, tensor the op writes, finisher) for a node with an output clamp.

        RELU / RELU6 / RELU_N1_TO_1 fuse; any other clamp is computed by the op into a
        temporary tensor (same quantization) followed by MAXIMUM / MINIMUM into ``dst``
        (default: the IR output tensor)."""
        out = node.outputs[0]
        dst = self.tensor(out) if dst is None else dst
        code = fused_activation(node)
        t_min, t_max = _limits(self.info[dst][1])
        lo, hi = node.attrs.get("act_min", t_min), node.attrs.get("act_max", t_max)
        if code is not None or (lo <= t_min and hi >= t_max):
            return code or Act.NONE, dst, lambda: None
        tmp = self.like_index(dst, "unclamped")
        return Act.NONE, tmp, lambda: self.clamp(tmp, dst, lo, hi)

    def like_index(self, idx: int, suffix: str) -> int:
        shape, dtype, quant = self.info[idx]
        return self.add_tensor(f"{self.tensors[idx].name}_{suffix}", shape, dtype, quant)

    def clamp(self, src: int, dst: int, lo: int, hi: int) -> None:
        """dst = min(max(src, lo), hi) on int8 (or int16) values of one quantization (exact)."""
        shape, dtype, q = self.info[dst]
        t_min, t_max = _limits(dtype)
        steps = [(BO.MAXIMUM, lo)] if lo > t_min else []
        if hi < t_max:
            steps.append((BO.MINIMUM, hi))
        if not steps:   # nothing to clamp: a same-shape RESHAPE is an exact copy
            self.reshape(src, dst, shape)
            return
        cur = src
        for i, (code, bound) in enumerate(steps):
            nxt = dst if i == len(steps) - 1 else self.like_index(dst, "clamp_lo")
            c = self.const(f"{self.tensors[dst].name}_{'min' if code == BO.MAXIMUM else 'max'}_bound",
                           np.array([bound], dtype=dtype), _per_tensor(q))
            self.op(code, [cur, c], [nxt], fb.BuiltinOptions.MaximumMinimumOptions,
                    fb.MaximumMinimumOptionsT(), version=4 if dtype == "int16" else 2)
            cur = nxt

    def reshape(self, src: int, dst: int, shape: tuple[int, ...]) -> None:
        shape_t = self.const(f"{self.tensors[dst].name}_shape", np.asarray(shape, dtype=np.int32))
        opts = fb.ReshapeOptionsT()
        opts.newShape = np.asarray(shape, dtype=np.int32)
        self.op(BO.RESHAPE, [src, shape_t], [dst], fb.BuiltinOptions.ReshapeOptions, opts, version=1)

    def pad(self, x_name: str, pads: tuple[int, int, int, int], value: int | None) -> int:
        """PAD (zero-point fill) or PADV2 (``value`` fill) of an NHWC tensor; returns the result."""
        pt, pb, pl, pr = pads
        t = self.g.t(x_name)
        n, h, w, c = t.shape
        out = self.add_tensor(f"{x_name}_padded", (n, h + pt + pb, w + pl + pr, c), t.dtype, t.quant)
        paddings = self.const(f"{x_name}_paddings", np.array([[0, 0], [pt, pb], [pl, pr], [0, 0]], dtype=np.int32))
        if value is None:
            self.op(BO.PAD, [self.tensor(x_name), paddings], [out], fb.BuiltinOptions.PadOptions,
                    fb.PadOptionsT(), version=2)
        else:
            v = self.const(f"{x_name}_pad_value", np.array([value], dtype=t.dtype), _per_tensor(t.quant))
            self.op(BO.PADV2, [self.tensor(x_name), paddings, v], [out], fb.BuiltinOptions.PadV2Options,
                    fb.PadV2OptionsT(), version=2)
        return out


def _per_tensor(q: QuantParams) -> QuantParams:
    return QuantParams(q.scale[:1], q.zero_point[:1])


def _tensor_map(name: str, index: int) -> fb.TensorMapT:
    m = fb.TensorMapT()
    m.name = name
    m.tensorIndex = index
    return m


def fused_activation(node: Node) -> int | None:
    """The TFLite fused activation equal to the node's clamp, None if TFLite has none for it."""
    act = node.attrs.get("activation")
    if act is None:
        return Act.NONE
    lo, hi = act.get("min"), act.get("max")
    if lo is not None and float(lo) == 0.0 and hi is None:
        return Act.RELU
    if lo is not None and hi is not None and float(lo) == 0.0 and float(hi) == 6.0:
        return Act.RELU6
    if lo is not None and hi is not None and float(lo) == -1.0 and float(hi) == 1.0:
        return Act.RELU_N1_TO_1
    return None


def padding_plan(in_hw: tuple[int, int], k_hw: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], pads: tuple[int, int, int, int],
                 out_hw: tuple[int, int]) -> tuple[int, tuple[int, int, int, int] | None]:
    """TFLite padding for an op with explicit padding (top, left, bottom, right) and output size.

    Returns (Padding.SAME or VALID, None) when TFLite's own padding gives the same windows, else
    (VALID, (top, bottom, left, right)) for an explicit PAD in front."""
    pt, pl, _, _ = pads
    eff = [d * (k - 1) + 1 for k, d in zip(k_hw, dilation)]
    if pt == 0 and pl == 0 and all(i >= e and o == (i - e) // s + 1
                                   for i, e, s, o in zip(in_hw, eff, stride, out_hw)):
        return fb.Padding.VALID, None
    same = True
    for i, e, s, o, p0 in zip(in_hw, eff, stride, out_hw, (pt, pl)):
        o_same = (i + s - 1) // s
        total = max((o_same - 1) * s + e - i, 0)
        same &= o == o_same and p0 == total // 2
    if same:
        return fb.Padding.SAME, None
    after = [max((o - 1) * s + e - i - p0, 0) for i, e, s, o, p0 in zip(in_hw, eff, stride, out_hw, (pt, pl))]
    return fb.Padding.VALID, (pt, after[0], pl, after[1])


# --- op lowerings ---------------------------------------------------------------------

def _conv_like(b: ModelBuilder, node: Node, depthwise: bool) -> None:
    x, w, bias = node.inputs
    a = node.attrs
    xs, ys, ws = b.g.t(x).shape, b.g.t(node.outputs[0]).shape, b.g.t(w).shape
    k_hw = (ws[1], ws[2])
    mode, explicit = padding_plan((xs[1], xs[2]), k_hw, tuple(a["stride"]), tuple(a["dilation"]),
                                  tuple(a["padding"]), (ys[1], ys[2]))
    x_idx = b.pad(x, explicit, None) if explicit else b.tensor(x)
    code, out, finish = b.output_with_activation(node)
    wide = b.g.t(x).dtype == "int16"     # 16x8: int16 activations, int64 bias
    if depthwise:
        opts = fb.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = int(a.get("depth_multiplier", ws[3] // xs[3]))
        otype, builtin, version = fb.BuiltinOptions.DepthwiseConv2DOptions, BO.DEPTHWISE_CONV_2D, 5 if wide else 3
    else:
        opts = fb.Conv2DOptionsT()
        grouped = ws[3] != xs[3]
        otype, builtin = fb.BuiltinOptions.Conv2DOptions, BO.CONV_2D
        version = 6 if grouped else 4 if wide else 3
    opts.padding = mode
    opts.strideH, opts.strideW = (int(s) for s in a["stride"])
    opts.dilationHFactor, opts.dilationWFactor = (int(d) for d in a["dilation"])
    opts.fusedActivationFunction = code
    b.op(builtin, [x_idx, b.tensor(w), b.tensor(bias)], [out], otype, opts, version)
    finish()


@lowers("conv2d")
def _conv2d(b: ModelBuilder, node: Node) -> None:
    _conv_like(b, node, depthwise=False)


@lowers("depthwise_conv2d")
def _depthwise(b: ModelBuilder, node: Node) -> None:
    _conv_like(b, node, depthwise=True)


@lowers("linear")
def _linear(b: ModelBuilder, node: Node) -> None:
    if b.linear_op == "fully_connected":
        _linear_fully_connected(b, node)
    else:
        _linear_as_conv(b, node)


def _linear_fully_connected(b: ModelBuilder, node: Node) -> None:
    """FULLY_CONNECTED. Exact in TFLite Micro; LiteRT's reference FULLY_CONNECTED requantizes in
    double precision (round(acc * s_in * s_w / s_out), LiteRT#8567), so it differs from every
    MultiplyByQuantizedMultiplier kernel by 1 LSB where double rounding and single rounding
    disagree."""
    x, w, bias = node.inputs
    code, out, finish = b.output_with_activation(node)
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = code
    opts.keepNumDims = len(b.g.t(x).shape) > 2
    version = 7 if b.g.t(x).dtype == "int16" else 5 if opts.keepNumDims else 4
    b.op(BO.FULLY_CONNECTED, [b.tensor(x), b.tensor(w), b.tensor(bias)], [out],
         fb.BuiltinOptions.FullyConnectedOptions, opts, version=version)
    finish()


def _linear_as_conv(b: ModelBuilder, node: Node) -> None:
    """x [1, ..., K] @ W[N, K]^T as a 1x1 CONV_2D on [1, 1, M, K] between two RESHAPEs: the int8
    conv kernels of TFLite Micro and LiteRT (reference) both requantize with
    MultiplyByQuantizedMultiplier per output channel, exactly the IR linear's arithmetic.
    Between two linear layers the activation stays [1, 1, M, K] (no RESHAPE pair)."""
    x, w, bias = node.inputs
    y = node.outputs[0]
    xt, wt, yt = b.g.t(x), b.g.t(w), b.g.t(y)
    k, n_out = xt.shape[-1], wt.shape[0]
    m = int(np.prod(xt.shape[1:-1], dtype=np.int64)) if len(xt.shape) > 2 else 1
    if x in b.conv_view:
        x4 = b.conv_view[x]
    else:
        x4 = b.add_tensor(f"{x}_as_nhwc", (1, 1, m, k), xt.dtype, xt.quant)
        b.reshape(b.tensor(x), x4, (1, 1, m, k))
    wq = wt.quant
    w4 = b.add_tensor(f"{w}_ohwi", (n_out, 1, 1, k), wt.dtype,
                      QuantParams(wq.scale, wq.zero_point, 0 if wq.per_channel else None),
                      wt.data.reshape(n_out, 1, 1, k))
    users = b.g.consumers(y)
    stays_4d = (users and not b.g.is_graph_output(y) and y not in b.index
                and all(u.op == "linear" and u.inputs[0] == y and u.inputs.count(y) == 1 for u in users))
    if stays_4d:
        y4 = b.add_tensor(y, (1, 1, m, n_out), yt.dtype, yt.quant)
        b.index[y] = b.conv_view[y] = y4
        code, out, finish = b.output_with_activation(node, y4)
    else:
        code, out, finish = b.output_with_activation(node)
        y4 = b.add_tensor(f"{y}_nhwc", (1, 1, m, n_out), yt.dtype, yt.quant)
    opts = fb.Conv2DOptionsT()
    opts.padding = fb.Padding.VALID
    opts.strideH = opts.strideW = 1
    opts.fusedActivationFunction = code
    b.op(BO.CONV_2D, [x4, w4, b.tensor(bias)], [y4 if not stays_4d else out], fb.BuiltinOptions.Conv2DOptions,
         opts, version=4 if xt.dtype == "int16" else 3)
    if not stays_4d:
        b.reshape(y4, out, yt.shape)
    finish()


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
    result is an integer up to ~1e-5 before rounding, so exact in every runtime."""
    t = b.g.t(name)
    s, zp = t.quant.scalar()
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
    b.op(BO.ADD, [b.tensor(node.inputs[0]), neg], [out], fb.BuiltinOptions.AddOptions, opts, version=2)
    finish()


@lowers("mul")
def _mul(b: ModelBuilder, node: Node) -> None:
    code, out, finish = b.output_with_activation(node)
    opts = fb.MulOptionsT()
    opts.fusedActivationFunction = code
    (s1, _), (s2, _), (so, _) = (b.g.t(n).quant.scalar() for n in (*node.inputs, node.outputs[0]))
    version = 3 if float(s1) * float(s2) / float(so) >= 1.0 else 2
    b.op(BO.MUL, [b.tensor(i) for i in node.inputs], [out], fb.BuiltinOptions.MulOptions, opts, version=version)
    finish()


def _requantized_input(b: ModelBuilder, node: Node, k: int, params: dict | None) -> int:
    """Operand k of ``node``, brought to the output quantization by QUANTIZE when needed."""
    name = node.inputs[k]
    if params is None:
        return b.tensor(name)
    t, y = b.g.t(name), b.g.t(node.outputs[0])
    dst = b.add_tensor(f"{name}_to_{node.outputs[0]}", t.shape, "int8", y.quant)
    b.op(BO.QUANTIZE, [b.tensor(name)], [dst], version=1)
    return dst


def _min_max(b: ModelBuilder, node: Node, code: int) -> None:
    ins = [_requantized_input(b, node, k, p) for k, p in enumerate(node.attrs["requant"])]
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


def _pool(b: ModelBuilder, node: Node, builtin: int) -> None:
    x = node.inputs[0]
    a = node.attrs
    xs, ys = b.g.t(x).shape, b.g.t(node.outputs[0]).shape
    kh, kw = (int(k) for k in a["kernel"])
    mode, explicit = padding_plan((xs[1], xs[2]), (kh, kw), tuple(a["stride"]), (1, 1),
                                  tuple(a["padding"]), (ys[1], ys[2]))
    if explicit and builtin == BO.AVERAGE_POOL_2D:
        raise UnsupportedOpError(
            f"avg_pool2d at {node.where()} has padding {tuple(a['padding'])} (ceil_mode="
            f"{a.get('ceil_mode', False)}) on a {xs[1]}x{xs[2]} input, which TFLite's SAME/VALID "
            "padding cannot express (TFLite averages over the valid part of SAME windows only)")
    dtype = b.g.t(x).dtype
    x_idx = b.pad(x, explicit, _limits(dtype)[0]) if explicit else b.tensor(x)
    code, out, finish = b.output_with_activation(node)
    opts = fb.Pool2DOptionsT()
    opts.padding = mode
    opts.strideH, opts.strideW = (int(s) for s in a["stride"])
    opts.filterHeight, opts.filterWidth = kh, kw
    opts.fusedActivationFunction = code
    b.op(builtin, [x_idx], [out], fb.BuiltinOptions.Pool2DOptions, opts, version=3 if dtype == "int16" else 2)
    finish()


@lowers("max_pool2d")
def _max_pool(b: ModelBuilder, node: Node) -> None:
    _pool(b, node, BO.MAX_POOL_2D)


@lowers("avg_pool2d")
def _avg_pool(b: ModelBuilder, node: Node) -> None:
    _pool(b, node, BO.AVERAGE_POOL_2D)


@lowers("reshape")
def _reshape(b: ModelBuilder, node: Node) -> None:
    y = node.outputs[0]
    b.reshape(b.tensor(node.inputs[0]), b.tensor(y), b.g.t(y).shape)


@lowers("transpose")
def _transpose(b: ModelBuilder, node: Node) -> None:
    perm = np.asarray(node.attrs["perm"], dtype=np.int32)
    p = b.const(f"{node.outputs[0]}_perm", perm)
    version = 5 if b.g.t(node.inputs[0]).dtype == "int16" else 4 if perm.size > 4 else 2
    b.op(BO.TRANSPOSE, [b.tensor(node.inputs[0]), p], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.TransposeOptions, fb.TransposeOptionsT(), version=version)


def _transpose_op(b: ModelBuilder, src: int, dst: int, perm: list[int]) -> None:
    pt = b.const(f"{b.tensors[dst].name}_perm", np.asarray(perm, dtype=np.int32))
    b.op(BO.TRANSPOSE, [src, pt], [dst], fb.BuiltinOptions.TransposeOptions, fb.TransposeOptionsT(),
         version=4 if len(perm) > 4 else 2)


def _on_last_axis(b: ModelBuilder, node: Node, emit: Callable[[int, int], None]) -> None:
    """``emit(src, dst)`` writes an op that works on the last axis (SOFTMAX, LOG_SOFTMAX); another
    axis is moved last by TRANSPOSE and back (the op is computed per row, so this is exact)."""
    x, y = node.inputs[0], node.outputs[0]
    shape = b.g.t(x).shape
    rank = len(shape)
    axis = node.attrs["axis"] % rank
    if axis == rank - 1:
        emit(b.tensor(x), b.tensor(y))
        return
    perm = [i for i in range(rank) if i != axis] + [axis]
    inv = [perm.index(i) for i in range(rank)]
    moved = tuple(shape[p] for p in perm)
    xt = b.add_tensor(f"{x}_axis_last", moved, "int8", b.g.t(x).quant)
    yt = b.add_tensor(f"{y}_axis_last", moved, "int8", b.g.t(y).quant)
    _transpose_op(b, b.tensor(x), xt, perm)
    emit(xt, yt)
    _transpose_op(b, yt, b.tensor(y), inv)


@lowers("softmax")
def _softmax(b: ModelBuilder, node: Node) -> None:
    opts = fb.SoftmaxOptionsT()
    opts.beta = float(node.attrs.get("beta", 1.0))
    _on_last_axis(b, node, lambda src, dst: b.op(BO.SOFTMAX, [src], [dst], fb.BuiltinOptions.SoftmaxOptions,
                                                 opts, version=2))


@lowers("log_softmax")
def _log_softmax(b: ModelBuilder, node: Node) -> None:
    """LOG_SOFTMAX (int8: output 16/256, zero point 127, TFLite's fixed-point log-softmax)."""
    _on_last_axis(b, node, lambda src, dst: b.op(BO.LOG_SOFTMAX, [src], [dst], fb.BuiltinOptions.LogSoftmaxOptions,
                                                 fb.LogSoftmaxOptionsT(), version=2))


@lowers("mean")
def _mean(b: ModelBuilder, node: Node) -> None:
    """MEAN (int8: QuantizedMeanOrSum; the IR's output quantization always differs from the
    input's, see ops/reduce.py). TFLite Micro resolves at most two reduced axes (a fixed-size
    array), so a mean over more axes runs on a [kept..., reduced] view: TRANSPOSE (when the
    reduced axes are not last) and RESHAPE around a one-axis MEAN (the same sum, so exact)."""
    x, y = node.inputs[0], node.outputs[0]
    xt, yt = b.g.t(x), b.g.t(y)
    axes, rank = sorted(int(a) for a in node.attrs["axes"]), len(xt.shape)
    if rank > 5:
        raise UnsupportedOpError(f"mean of a rank-{rank} tensor at {node.where()}: TFLite Micro's MEAN takes "
                                 "at most 5 dimensions (see `edgeq targets --ops`)")

    def mean(src: int, dst: int, ax: list[int], keep: bool) -> None:
        opts = fb.ReducerOptionsT()
        opts.keepDims = keep
        b.op(BO.MEAN, [src, b.const(f"{b.tensors[dst].name}_axes", np.asarray(ax, dtype=np.int32))], [dst],
             fb.BuiltinOptions.ReducerOptions, opts, version=2)

    if len(axes) <= 2:
        mean(b.tensor(x), b.tensor(y), axes, bool(node.attrs["keepdim"]))
        return
    kept = [d for d in range(rank) if d not in axes]
    src = b.tensor(x)
    if kept + axes != list(range(rank)):
        moved = b.add_tensor(f"{x}_reduced_last", tuple(xt.shape[d] for d in kept + axes), "int8", xt.quant)
        _transpose_op(b, src, moved, kept + axes)
        src = moved
    flat_shape = (*(xt.shape[d] for d in kept), int(np.prod([xt.shape[d] for d in axes])))
    flat = b.add_tensor(f"{x}_reduced_flat", flat_shape, "int8", xt.quant)
    b.reshape(src, flat, flat_shape)
    kept_shape = tuple(xt.shape[d] for d in kept)
    if kept_shape == yt.shape:
        mean(flat, b.tensor(y), [len(kept)], False)
        return
    out = b.add_tensor(f"{y}_reduced", kept_shape, "int8", yt.quant)
    mean(flat, out, [len(kept)], False)
    b.reshape(out, b.tensor(y), yt.shape)


@lowers("argmax")
def _argmax(b: ModelBuilder, node: Node) -> None:
    """ARG_MAX with output_type int32 (first index on ties); keepdim adds a RESHAPE."""
    x, y = node.inputs[0], node.outputs[0]
    axis = int(node.attrs["axis"])
    opts = fb.ArgMaxOptionsT()
    opts.outputType = fb.TensorType.INT32
    dst = b.tensor(y)
    if node.attrs["keepdim"]:
        squeezed = tuple(d for i, d in enumerate(b.g.t(x).shape) if i != axis)
        dst = b.add_tensor(f"{y}_squeezed", squeezed, "int32")
    b.op(BO.ARG_MAX, [b.tensor(x), b.const(f"{y}_axis", np.array([axis], dtype=np.int32))], [dst],
         fb.BuiltinOptions.ArgMaxOptions, opts, version=2)
    if node.attrs["keepdim"]:
        b.reshape(dst, b.tensor(y), b.g.t(y).shape)


# --- activations ------------------------------------------------------------------------

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
        b.op(builtin, [x], [b.tensor(node.outputs[0])], version=2)
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


@lowers("conv_transpose2d")
def _conv_transpose(b: ModelBuilder, node: Node) -> None:
    """TRANSPOSE_CONV (version 3: int8, per-channel OHWI filters, int32 bias, no fused activation:
    TFLite Micro's int8 kernel ignores it). VALID padding with the full output size
    ((H - 1) * s + k, or more when output_padding reaches past it: those rows get the bias
    alone, as in torch) puts output row y of torch at row y + padding, so torch's explicit
    padding is a STRIDED_SLICE after it; a clamp that is not the identity is MAXIMUM/MINIMUM."""
    x, w, bias = node.inputs
    y = node.outputs[0]
    a = node.attrs      # groups == 1 and dilation == (1, 1): check_supported
    (_, h, wd, _), (o, kh, kw, _), yshape = b.g.t(x).shape, b.g.t(w).shape, b.g.t(y).shape
    oh, ow = yshape[1], yshape[2]
    (sh, sw), (ph, pw) = a["stride"], a["padding"][:2]   # torch pads both sides alike
    full = (max((h - 1) * sh + kh, ph + oh), max((wd - 1) * sw + kw, pw + ow))
    lo, hi = a["act_min"], a["act_max"]
    clamp = lo > INT8_MIN or hi < INT8_MAX
    dst = b.tensor(y)
    sliced = b.like_index(dst, "unclamped") if clamp else dst
    conv_out = sliced if full == (oh, ow) else b.add_tensor(f"{y}_full", (1, *full, o), "int8", b.g.t(y).quant)
    opts = fb.TransposeConvOptionsT()
    opts.padding = fb.Padding.VALID
    opts.strideH, opts.strideW = int(sh), int(sw)
    opts.fusedActivationFunction = Act.NONE
    out_shape = b.const(f"{y}_output_shape", np.array([1, *full, o], dtype=np.int32))
    b.op(BO.TRANSPOSE_CONV, [out_shape, b.tensor(w), b.tensor(x), b.tensor(bias)], [conv_out],
         fb.BuiltinOptions.TransposeConvOptions, opts, version=3)
    if conv_out != sliced:
        ins = [conv_out] + [b.const(f"{y}_crop_{k}", np.asarray(v, dtype=np.int32)) for k, v in
                            (("begin", [0, ph, pw, 0]), ("end", [1, ph + oh, pw + ow, o]), ("strides", [1, 1, 1, 1]))]
        b.op(BO.STRIDED_SLICE, ins, [sliced], fb.BuiltinOptions.StridedSliceOptions, fb.StridedSliceOptionsT(),
             version=2)
    if clamp:
        b.clamp(sliced, dst, lo, hi)


refuses("gelu", "TFLite Micro has no GELU kernel, so no int8 GELU is bit-exact in both TFLite Micro "
                "and LiteRT (the onnx target lowers gelu)")


# --- data movement ------------------------------------------------------------------------

@lowers("concat")
def _concat(b: ModelBuilder, node: Node) -> None:
    ins = [_requantized_input(b, node, k, p) for k, p in enumerate(node.attrs["requant"])]
    opts = fb.ConcatenationOptionsT()
    opts.axis = int(node.attrs["axis"])
    opts.fusedActivationFunction = Act.NONE
    b.op(BO.CONCATENATION, ins, [b.tensor(node.outputs[0])], fb.BuiltinOptions.ConcatenationOptions,
         opts, version=2)


@lowers("pad")
def _pad_op(b: ModelBuilder, node: Node) -> None:
    x, y = node.inputs[0], node.outputs[0]
    t = b.g.t(x)
    if len(t.shape) > 4:
        raise UnsupportedOpError(f"pad of a rank-{len(t.shape)} tensor at {node.where()}: TFLite Micro's "
                                 "PAD takes at most 4 dimensions (see `edgeq targets --ops`)")
    paddings = b.const(f"{y}_paddings", np.asarray(node.attrs["pads"], dtype=np.int32))
    value = node.attrs["pad_value"]
    if value == int(t.quant.zero_point[0]):
        b.op(BO.PAD, [b.tensor(x), paddings], [b.tensor(y)], fb.BuiltinOptions.PadOptions, fb.PadOptionsT(),
             version=2)
        return
    v = b.const(f"{y}_pad_value", np.array([value], dtype=np.int8), _per_tensor(t.quant))
    b.op(BO.PADV2, [b.tensor(x), paddings, v], [b.tensor(y)], fb.BuiltinOptions.PadV2Options,
         fb.PadV2OptionsT(), version=2)


@lowers("slice")
def _slice_op(b: ModelBuilder, node: Node) -> None:
    a, y = node.attrs, node.outputs[0]
    rank = len(a["begin"])
    ins = [b.tensor(node.inputs[0])] + [b.const(f"{y}_{k}", np.asarray(a[k], dtype=np.int32))
                                        for k in ("begin", "end", "strides")]
    opts = fb.StridedSliceOptionsT()
    b.op(BO.STRIDED_SLICE, ins, [b.tensor(y)], fb.BuiltinOptions.StridedSliceOptions, opts,
         version=4 if rank > 4 else 2)


def tflite_nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """RESIZE_NEAREST_NEIGHBOR's source indices (align_corners and half_pixel_centers off)."""
    scale = np.float32(in_size) / np.float32(out_size)
    idx = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, in_size - 1)


@lowers("resize_nearest")
def _resize_nearest(b: ModelBuilder, node: Node) -> None:
    from ...ops import get_op
    ih, iw = get_op("resize_nearest").indices(node, b.g)
    xs = b.g.t(node.inputs[0]).shape
    oh, ow = node.attrs["size"]
    if not (np.array_equal(ih, tflite_nearest_indices(xs[1], oh))
            and np.array_equal(iw, tflite_nearest_indices(xs[2], ow))):
        raise UnsupportedOpError(
            f"nearest resize at {node.where()} from {xs[1]}x{xs[2]} to {oh}x{ow}: torch's source pixels "
            "differ from TFLite RESIZE_NEAREST_NEIGHBOR's (use an integer scale factor or a size "
            "that is a multiple of the input; see `edgeq targets --ops`)")
    size = b.const(f"{node.outputs[0]}_size", np.array([oh, ow], dtype=np.int32))
    opts = fb.ResizeNearestNeighborOptionsT()
    opts.alignCorners = False
    opts.halfPixelCenters = False
    b.op(BO.RESIZE_NEAREST_NEIGHBOR, [b.tensor(node.inputs[0]), size], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.ResizeNearestNeighborOptions, opts, version=2)


@lowers("resize_bilinear")
def _resize_bilinear(b: ModelBuilder, node: Node) -> None:
    """RESIZE_BILINEAR (int8 reference: ResizeBilinearInteger, the IR's algorithm);
    align_corners=False is TFLite's half_pixel_centers (version 3), align_corners version 2."""
    oh, ow = node.attrs["size"]
    size = b.const(f"{node.outputs[0]}_size", np.array([oh, ow], dtype=np.int32))
    opts = fb.ResizeBilinearOptionsT()
    opts.alignCorners = bool(node.attrs["align_corners"])
    opts.halfPixelCenters = not opts.alignCorners
    b.op(BO.RESIZE_BILINEAR, [b.tensor(node.inputs[0]), size], [b.tensor(node.outputs[0])],
         fb.BuiltinOptions.ResizeBilinearOptions, opts, version=3 if opts.halfPixelCenters else 2)
