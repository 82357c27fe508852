"""Helpers shared by the test modules (import as ``from tests.helpers import ...``)."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.ops import get_op
from edgeq.sensitivity import dequantized_copy
from edgeq.targets.onnx_qdq.validate import fused_int8_saturates


class Fn(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def ort_held_to_qdq_bounds(runtime: str) -> bool:
    """Whether an onnxruntime run is held to the LSB bounds of the QDQ semantics: every run but
    ORT_ENABLE_ALL on a CPU where its fused int8 kernels saturate (test_onnx_qdq shows that
    saturation is the whole difference there)."""
    return not ("ORT_ENABLE_ALL" in runtime and fused_int8_saturates())


def conv(**kw):
    torch.manual_seed(0)
    return Fn(lambda s, x: s.c(x), c=nn.Conv2d(**kw))


def data(shape, n=48, seed=0):
    """n standard-normal samples of ``shape`` (float32)."""
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


class IntegratingLstm(nn.Module):
    """An LSTM whose forget gate is near 1 (bias 6): the cell state integrates the inputs over
    ``steps`` steps, so its range grows with the sequence while each step adds a small
    increment that an int8 state (step = range / 255) rounds away; a linear head reads the last
    hidden state. int8 loses it; a 16-bit cell state (as TFLite's 16x8 LSTM) keeps it."""

    steps = 120

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        with torch.no_grad():
            self.lstm.bias_ih_l0[8:16] = 6.0
            self.lstm.weight_hh_l0.mul_(0.3)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def integrating_lstm_data(n: int, seed: int) -> np.ndarray:
    """(n, steps, 4) inputs with a positive mean: the cell state drifts one way."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, IntegratingLstm.steps, 4)) * 0.5 + 0.3).astype(np.float32)


#: int16 kernels whose own approximation exceeds one output step: TFLite's int16 TANH
#: truncates its input multiplier and interpolates a 1/24-step table (within 3 steps of 2^-15,
#: measured over every int16 input; the int16 LOGISTIC stays within 1)
INT16_KERNEL_LSB = {"tanh": 3}


def assert_each_layer_within_one_lsb(fgraph, qgraph, x):
    """Every node's int8 output is within 1 LSB of quantize(float op(dequantized int inputs,
    dequantized int weights)): the op's own rounding is the only error allowed (int16 kernels
    known to approximate more: ``INT16_KERNEL_LSB``)."""
    fq = dequantized_copy(qgraph)
    qvals = interpreter.run(qgraph, [interpreter.quantize_input(qgraph, 0, x)], keep=True)
    for node in qgraph.nodes:
        fnode = next(n for n in fq.nodes if n.name == node.name)
        args = [interpreter.dequantize(qgraph, n, qvals[n]) if n in qvals else fq.t(n).data for n in node.inputs]
        ref = get_op(fnode.op).run_float(fnode, fq, args)[0]
        if qgraph.t(node.outputs[0]).quant is None:    # argmax: indices of the dequantized maximum
            np.testing.assert_array_equal(qvals[node.outputs[0]], ref, err_msg=f"{node.name} ({node.op})")
            continue
        scale, zp = qgraph.t(node.outputs[0]).quant.scalar()
        info = np.iinfo(qgraph.t(node.outputs[0]).dtype)
        expect = np.clip(np.round(ref.astype(np.float64) / np.float32(scale)) + zp, info.min, info.max)
        diff = np.abs(qvals[node.outputs[0]].astype(np.int64) - expect)
        allowed = INT16_KERNEL_LSB.get(node.op, 1) if qgraph.t(node.outputs[0]).dtype == "int16" else 1
        assert diff.max() <= allowed, f"{node.name} ({node.op}) is {diff.max()} LSB from its float reference"


# -- one-operator TFLite models run in TFLite Micro and LiteRT (softmax / log-softmax tests) --

def build_softmax_model(shape: tuple[int, ...], in_scale: float, in_zp: int,
                         beta: float = 1.0, log: bool = False) -> bytes:
    """A one-operator SOFTMAX model (``log``: LOG_SOFTMAX, output 16/256, zero point 127)."""
    flatbuffers = pytest.importorskip("flatbuffers")
    schema = pytest.importorskip("tflite_micro.tensorflow.lite.micro.python.schema_py_generated")

    def tensor(name: str, buf: int, scale: float, zp: int):
        t = schema.TensorT()
        t.shape = list(shape)
        t.type = schema.TensorType.INT8
        t.buffer = buf
        t.name = name
        q = schema.QuantizationParametersT()
        q.scale = [float(scale)]
        q.zeroPoint = [int(zp)]
        t.quantization = q
        return t

    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.LOG_SOFTMAX if log else schema.BuiltinOperator.SOFTMAX
    code.deprecatedBuiltinCode = code.builtinCode
    code.version = 2 if log else 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    if log:
        op.builtinOptionsType = schema.BuiltinOptions.LogSoftmaxOptions
        op.builtinOptions = schema.LogSoftmaxOptionsT()
    else:
        op.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
        op.builtinOptions = schema.SoftmaxOptionsT()
        op.builtinOptions.beta = float(beta)
    sub = schema.SubGraphT()
    out_scale, out_zp = (16.0 / 256.0, 127) if log else (1.0 / 256.0, -128)
    sub.tensors = [tensor("x", 1, in_scale, in_zp), tensor("y", 2, out_scale, out_zp)]
    sub.inputs = [0]
    sub.outputs = [1]
    sub.operators = [op]
    sub.name = "main"
    model = schema.ModelT()
    model.version = 3  # TFLITE_SCHEMA_VERSION; LiteRT rejects any other value
    model.operatorCodes = [code]
    model.subgraphs = [sub]
    model.buffers = [schema.BufferT(), schema.BufferT(), schema.BufferT()]  # buffer 0 empty
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def run_tflm(buf: bytes, x: np.ndarray) -> np.ndarray:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interp = runtime.Interpreter.from_bytes(buf, arena_size=4 * x.nbytes + 65536)
    interp.set_input(x, 0)
    interp.invoke()
    return interp.get_output(0)


def run_litert(buf: bytes, x: np.ndarray, reference: bool = True) -> np.ndarray:
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    kwargs = {}
    if reference:
        kwargs["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_REF
    interp = litert.Interpreter(model_content=buf, **kwargs)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


class SharedParamsNet(nn.Module):
    """A model whose artifact repeats quantization parameters and constants: two zero biases
    of equal length (build it without bias correction, which would make them differ), a
    flatten and the 4-D views of linear layers (same parameters on both sides), per-channel
    weights with equal zero points."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1, self.fc2, self.fc3 = nn.Linear(8 * 4 * 4, 16), nn.Linear(16, 16), nn.Linear(16, 4)
        with torch.no_grad():
            self.fc1.bias.zero_()
            self.fc2.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).flatten(1)
        return self.fc3(self.fc2(self.fc1(y)))
