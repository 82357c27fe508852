"""Accumulates the tensors, buffers, operator codes and operators of one TFLite subgraph, with
the glue every lowering shares (clamps as MAXIMUM/MINIMUM, explicit PAD, RESHAPE) and the
mapping of IR activations and padding onto TFLite's."""
from __future__ import annotations

import json
from typing import Callable

import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Graph, Node, QuantParams
from .schema import SCHEMA_VERSION, TENSOR_TYPES, AlignedBufferT, SharedQuantizationT, fb

BO = fb.BuiltinOperator
Act = fb.ActivationFunctionType
INT8_MIN, INT8_MAX = -128, 127


def limits(dtype: str) -> tuple[int, int]:
    """The integer range of an activation type (int8 or int16: 16x8 layers)."""
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


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
        #: constant payload -> its buffer: equal constants (shapes, bounds, zero tables) are
        #: stored once and read by every tensor that holds them (constants are read-only)
        self.buffer_of: dict[bytes, int] = {}
        self.opcodes: list[fb.OperatorCodeT] = []
        self.opcode_index: dict[tuple[int, int], int] = {}
        self.operators: list[fb.OperatorT] = []
        #: further subgraphs (loop conditions and bodies), built by ``subgraph`` builders
        self.subgraphs: list[fb.SubGraphT] = []

    def subgraph(self, graph: Graph) -> "ModelBuilder":
        """A builder for another subgraph of the same model (buffers and operator codes shared)."""
        sub = ModelBuilder(graph, self.linear_op)
        sub.buffers, sub.buffer_of, sub.opcodes, sub.opcode_index, sub.subgraphs = \
            self.buffers, self.buffer_of, self.opcodes, self.opcode_index, self.subgraphs
        return sub

    def add_subgraph(self, sub: "ModelBuilder", inputs: list[int], outputs: list[int], name: str) -> int:
        """Append ``sub``'s tensors and operators as a subgraph; its index in the model."""
        sg = fb.SubGraphT()
        sg.tensors, sg.operators, sg.name = sub.tensors, sub.operators, name
        sg.inputs = np.asarray(inputs, dtype=np.int32)
        sg.outputs = np.asarray(outputs, dtype=np.int32)
        self.subgraphs.append(sg)
        return len(self.subgraphs)          # subgraph 0 is the main one

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
            q = SharedQuantizationT()
            q.scale = np.asarray(quant.scale, dtype=np.float32)
            q.zeroPoint = np.asarray(quant.zero_point, dtype=np.int64)
            q.quantizedDimension = int(quant.axis) if quant.axis is not None else 0
            tt.quantization = q
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data).astype(np.dtype(dtype).newbyteorder("<")))
            if tuple(arr.shape) != tuple(shape):
                arr = arr.reshape(shape)
            payload = arr.tobytes()
            if payload not in self.buffer_of:
                buf = AlignedBufferT()
                buf.data = np.frombuffer(payload, dtype=np.uint8)
                self.buffers.append(buf)
                self.buffer_of[payload] = len(self.buffers) - 1
            tt.buffer = self.buffer_of[payload]
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
        m.subgraphs = [sg, *self.subgraphs]
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
        t_min, t_max = limits(self.info[dst][1])
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
        t_min, t_max = limits(dtype)
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
                           np.array([bound], dtype=dtype), per_tensor(q))
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
            v = self.const(f"{x_name}_pad_value", np.array([value], dtype=t.dtype), per_tensor(t.quant))
            self.op(BO.PADV2, [self.tensor(x_name), paddings, v], [out], fb.BuiltinOptions.PadV2Options,
                    fb.PadV2OptionsT(), version=2)
        return out


    def gather(self, src: int, indices: np.ndarray | int, dst: int, axis: int) -> None:
        """GATHER (int8 data, int32 indices: exact in TFLite Micro and LiteRT) along ``axis``;
        ``indices`` is a constant array or the index of an int32 tensor."""
        if isinstance(indices, np.ndarray):
            indices = self.const(f"{self.tensors[dst].name}_indices", indices.astype(np.int32))
        opts = fb.GatherOptionsT()
        opts.axis = int(axis)
        self.op(BO.GATHER, [src, indices], [dst], fb.BuiltinOptions.GatherOptions, opts, version=2)

    def table_lookup(self, src: int, table: np.ndarray, dst: int) -> None:
        """dst = table[src + 128] for an int8 ``src`` and an int8[256] ``table`` (dst's
        quantization): CAST to int32, ADD 128, GATHER. Any int8 -> int8 function is exact this
        way in TFLite Micro and LiteRT alike (neither has a generic lookup-table operator)."""
        shape = self.info[src][0]
        name = self.tensors[dst].name
        wide = self.add_tensor(f"{name}_index_raw", shape, "int32")
        self.op(BO.CAST, [src], [wide], version=3)
        index = self.add_tensor(f"{name}_index", shape, "int32")
        offset = self.const(f"{name}_index_offset", np.array([128], dtype=np.int32))
        opts = fb.AddOptionsT()
        opts.fusedActivationFunction = Act.NONE
        self.op(BO.ADD, [wide, offset], [index], fb.BuiltinOptions.AddOptions, opts, version=1)
        lut = self.const(f"{name}_table", np.asarray(table, dtype=np.int8), per_tensor(self.info[dst][2]))
        self.gather(lut, index, dst, 0)

    def clamp_int32(self, src: int, lo: int, hi: int, suffix: str) -> int:
        """min(max(src, lo), hi) of an int32 tensor (ids, masks) into a new int32 tensor."""
        shape = self.info[src][0]
        cur = src
        for code, bound, tag in ((BO.MAXIMUM, lo, "lo"), (BO.MINIMUM, hi, "hi")):
            nxt = self.add_tensor(f"{self.tensors[src].name}_{suffix}_{tag}", shape, "int32")
            c = self.const(f"{self.tensors[src].name}_{suffix}_{tag}_bound", np.array([bound], dtype=np.int32))
            self.op(code, [cur, c], [nxt], fb.BuiltinOptions.MaximumMinimumOptions, fb.MaximumMinimumOptionsT(),
                    version=1)
            cur = nxt
        return cur


def per_tensor(q: QuantParams) -> QuantParams:
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


def requantized_input(b: ModelBuilder, node: Node, k: int, params: dict | None) -> int:
    """Operand k of ``node``, brought to the output quantization by QUANTIZE when needed."""
    name = node.inputs[k]
    if params is None:
        return b.tensor(name)
    t, y = b.g.t(name), b.g.t(node.outputs[0])
    dst = b.add_tensor(f"{name}_to_{node.outputs[0]}", t.shape, "int8", y.quant)
    b.op(BO.QUANTIZE, [b.tensor(name)], [dst], version=1)
    return dst
