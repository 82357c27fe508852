"""TFLite target, 16x8 mixed precision: int16 activations (int8 weights, int64 biases) lowered to
INT16 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / ADD / pools / RESHAPE / TRANSPOSE and
QUANTIZE at the int8 <-> int16 boundaries. Every artifact is bit-exact with the integer reference
in TFLite Micro and LiteRT's reference kernels (LiteRT's default kernels are measured); the
flatbuffer is read back to check the types really are INT16 / INT64."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter, metrics
from edgeq.calibration import calibrate
from edgeq.ir import QuantParams
from edgeq.ops.conv2d import set_requant_params
from edgeq.passes.precision import carried_states, int16_capable, promote
from edgeq.pipeline import float_graph
from edgeq.quantize import quantize
from edgeq.targets import load_profile, target_module
from edgeq.targets.tflite.schema import OP_NAMES, builtin_code, fb, read_model
from examples.models import MODELS, synthetic_data
from tests.helpers import Fn

PROFILE = load_profile("tflite")
T = target_module(PROFILE)
BO, TT = fb.BuiltinOperator, fb.TensorType
N_CAL, N_EVAL = 48, 16
SUMMARY: dict[tuple[str, str], dict[str, tuple[float, int]]] = {}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # see tests/conftest.py


def capable(g) -> list[str]:  # noqa: ANN001
    return [n.outputs[0] for n in g.nodes if int16_capable(g, n.outputs[0])]


class Built16:
    """A float graph with ``promoted`` activations in int16, through the tflite target."""

    def __init__(self, fgraph, ranges, promoted: list[str], ev: np.ndarray, out_dir: Path,  # noqa: ANN001
                 qgraph=None, **opts) -> None:  # noqa: ANN001
        self.options = {"io": "int8", **opts}
        self.qgraph = qgraph if qgraph is not None else quantize(promote(fgraph, promoted), ranges)
        self.graph = T.prepare(self.qgraph, PROFILE, self.options)
        self.artifacts = T.emit(self.graph, out_dir, PROFILE, self.options)
        self.model = read_model(self.artifacts[0].read_bytes())
        q = interpreter.quantize_input(self.graph, 0, ev, T.input_rounding)
        if q.ndim == 4:
            q = np.ascontiguousarray(q.transpose(0, 2, 3, 1))
        self.int_inputs = [q]
        res = interpreter.run(self.graph, self.int_inputs)
        self.ref = [res[n] for n in self.graph.outputs]
        self.runs = T.run(self.graph, self.artifacts, PROFILE, self.int_inputs, [ev], self.options)

    def int16_tensors(self) -> list[str]:
        return [n for n in self.graph.activations() if self.graph.t(n).dtype == "int16"]

    def stats(self) -> dict[str, tuple[float, int]]:
        out = {}
        for r in self.runs:
            c = metrics.compare(self.ref, r.outputs)
            out[r.runtime] = (c["exact_fraction"], c["max_abs_diff_lsb"])
        return out

    def assert_exact(self, runs: tuple[int, ...] = (0, 1)) -> None:
        """TFLite Micro (0) and LiteRT BUILTIN_REF (1) give the reference's integers."""
        for k in runs:
            r = self.runs[k]
            c = metrics.compare(self.ref, r.outputs)
            if c["exact_fraction"] < 1.0:
                bad = next(i for i in range(self.int_inputs[0].shape[0])
                           if any(not np.array_equal(a[i], b[i]) for a, b in zip(self.ref, r.outputs)))
                sample = [x[bad:bad + 1] for x in self.int_inputs]
                where = T.first_mismatch(self.graph, self.artifacts, PROFILE, sample,
                                         interpreter.run(self.graph, sample, keep=True), self.options)
                pytest.fail(f"{r.runtime}: exact {c['exact_fraction']:.4f}, max {c['max_abs_diff_lsb']} LSB; {where}")
            assert r.must_be_exact

    def op_versions(self) -> dict[str, set[int]]:
        out: dict[str, set[int]] = {}
        for oc in self.model.operatorCodes:
            out.setdefault(OP_NAMES[builtin_code(oc)], set()).add(oc.version)
        return out

    def quantize_directions(self) -> set[tuple[int, int]]:
        sg = self.model.subgraphs[0]
        return {(sg.tensors[o.inputs[0]].type, sg.tensors[o.outputs[0]].type) for o in sg.operators
                if builtin_code(self.model.operatorCodes[o.opcodeIndex]) == BO.QUANTIZE}


def check_flatbuffer_types(b: Built16) -> None:
    """Independent of the writer: read the .tflite back and check every 16x8 operator's tensors."""
    sg = b.model.subgraphs[0]
    by_name = {t.name.decode(): t for t in sg.tensors}
    kept = [n for n in b.int16_tensors() if n in by_name]   # glue between two RESHAPEs is collapsed
    assert kept
    for name in kept:                         # every int16 IR activation written is an INT16 tensor, zp 0
        t = by_name[name]
        assert t.type == TT.INT16, name
        assert not np.any(t.quantization.zeroPoint)
        assert np.float32(t.quantization.scale[0]) == np.float32(b.graph.t(name).quant.scale[0])
    n16 = 0
    for op in sg.operators:
        code = builtin_code(b.model.operatorCodes[op.opcodeIndex])
        ins = [sg.tensors[i] for i in op.inputs if i >= 0]
        out = sg.tensors[op.outputs[0]]
        if code in (BO.CONV_2D, BO.DEPTHWISE_CONV_2D, BO.FULLY_CONNECTED):
            x, w, bias = ins
            if x.type == TT.INT16:
                n16 += 1
                assert w.type == TT.INT8 and bias.type == TT.INT64 and out.type == TT.INT16
                data = np.frombuffer(bytes(b.model.buffers[bias.buffer].data), dtype="<i8")
                assert data.size == bias.shape[0] and np.all(np.abs(data) < 2**47)
                np.testing.assert_array_equal(np.float32(x.quantization.scale[0]) * w.quantization.scale.astype(np.float32),
                                              bias.quantization.scale.astype(np.float32))
            else:
                assert x.type == TT.INT8 and bias.type == TT.INT32 and out.type == TT.INT8
        elif code == BO.ADD:
            assert len({t.type for t in ins + [out]}) == 1
            if out.type == TT.INT16:
                n16 += 1
                assert op.builtinOptions.potScaleInt16 is False   # the general-scale algorithm
        elif code in (BO.MAX_POOL_2D, BO.AVERAGE_POOL_2D, BO.RESHAPE, BO.TRANSPOSE, BO.PAD, BO.PADV2,
                      BO.MAXIMUM, BO.MINIMUM):
            assert ins[0].type == out.type
            if code in (BO.PADV2, BO.MAXIMUM, BO.MINIMUM):
                assert ins[-1].type == out.type
    assert n16 > 0 or not any(b.graph.t(n.inputs[0]).dtype == "int16" for n in b.graph.nodes
                              if n.op in ("conv2d", "depthwise_conv2d", "linear", "add"))


# --- single 16x8 operators --------------------------------------------------------------------



F = nn.functional
#: name -> (model factory, input shape, which capable tensors to promote (None: all), expected ops)
OP_CASES = {
    "conv2d_relu": (lambda: Fn(lambda s, x: torch.relu(s.c(x)), c=nn.Conv2d(3, 8, 3, padding=1)), (3, 7, 6),
                    None, {"CONV_2D": 4, "QUANTIZE": 2}),
    "conv2d_stride2_explicit_pad": (lambda: Fn(lambda s, x: s.c(x), c=nn.Conv2d(3, 8, 3, stride=2, padding=2)),
                                    (3, 7, 6), None, {"CONV_2D": 4, "PAD": 2, "QUANTIZE": 2}),
    "depthwise_relu6_multiplier2": (lambda: Fn(lambda s, x: F.relu6(s.c(x)),
                                                c=nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4)), (4, 9, 8),
                                    None, {"DEPTHWISE_CONV_2D": 5, "PAD": 2, "QUANTIZE": 2}),
    "depthwise_same": (lambda: Fn(lambda s, x: torch.relu(s.d(s.c(x))), c=nn.Conv2d(3, 6, 1),
                                   d=nn.Conv2d(6, 6, 3, padding=1, groups=6)), (3, 6, 6),
                       None, {"CONV_2D": 4, "DEPTHWISE_CONV_2D": 5, "QUANTIZE": 2}),
    "linear_relu_linear": (lambda: Fn(lambda s, x: s.b(torch.relu(s.a(x))), a=nn.Linear(16, 8), b=nn.Linear(8, 4)),
                           (16,), None, {"CONV_2D": 4, "RESHAPE": 1, "QUANTIZE": 2}),
    "add_relu": (lambda: Fn(lambda s, x: torch.relu(s.a(x) + s.b(x)), a=nn.Conv2d(3, 4, 1),
                             b=nn.Conv2d(3, 4, 3, padding=1)), (3, 5, 5), None, {"CONV_2D": 4, "ADD": 3, "QUANTIZE": 2}),
    # one add operand int8 (requantized to int16 in front of the ADD)
    "add_mixed_operands": (lambda: Fn(lambda s, x: s.a(x) + s.b(x), a=nn.Conv2d(3, 4, 1),
                                       b=nn.Conv2d(3, 4, 3, padding=1)), (3, 5, 5), [0],
                           {"CONV_2D": {3, 4}, "ADD": 3, "QUANTIZE": 2}),
    # max pool with padding TFLite's SAME cannot express on 14x12: PADV2 with -32768
    "max_avg_pool": (lambda: Fn(lambda s, x: F.avg_pool2d(F.max_pool2d(F.max_pool2d(s.c(x), 3, 2, 1), 2, 2,
                                                                        ceil_mode=True), 3, 1, 1,
                                                           count_include_pad=False), c=nn.Conv2d(3, 8, 3, padding=1)),
                     (3, 14, 12), None, {"CONV_2D": 4, "PADV2": 2, "MAX_POOL_2D": 3, "AVERAGE_POOL_2D": 3,
                                         "QUANTIZE": 2}),
    "clamp_maximum": (lambda: Fn(lambda s, x: F.hardtanh(s.c(x), -0.3, 0.8), c=nn.Conv2d(3, 8, 3, padding=1)),
                      (3, 6, 6), None, {"CONV_2D": 4, "MAXIMUM": 4, "QUANTIZE": 2}),
    "transpose_reshape": (lambda: Fn(lambda s, x: s.l(s.c(x).permute(0, 2, 1, 3).reshape(1, -1)),
                                      c=nn.Conv2d(3, 4, 3, padding=1), l=nn.Linear(120, 5)), (3, 5, 6),
                          None, {"CONV_2D": 4, "TRANSPOSE": 5, "RESHAPE": 1, "QUANTIZE": 2}),
    # int8 -> int16 in front of the conv, int16 -> int8 in front of the (int8-only) hardswish
    "requantize_both_directions": (lambda: Fn(lambda s, x: s.d(F.hardswish(s.c(x))), c=nn.Conv2d(3, 8, 3, padding=1),
                                               d=nn.Conv2d(8, 4, 1)), (3, 6, 6), [0],
                                   {"CONV_2D": {3, 4}, "QUANTIZE": {1, 2}, "HARD_SWISH": 1}),
    # --- 16x8 forms of the real-model ops ---
    "sigmoid_tanh_mul": (lambda: Fn(lambda s, x: torch.sigmoid(s.a(x)) * torch.tanh(s.b(x)), a=nn.Linear(12, 10),
                                     b=nn.Linear(12, 10)), (12,), None,
                         {"CONV_2D": 4, "RESHAPE": 1, "LOGISTIC": 3, "TANH": 3, "MUL": 4, "QUANTIZE": 2}),
    # an int16 constant operand (per-channel, broadcast) after an op it cannot fold into
    "mul_constant_broadcast": (lambda: Fn(lambda s, x: torch.tanh(s.c(x)) * s.k, c=nn.Conv2d(3, 4, 1),
                                           k=nn.Parameter(torch.tensor([[[0.5]], [[-2.0]], [[3.0]], [[0.1]]]))),
                               (3, 5, 5), None, {"CONV_2D": 4, "TANH": 3, "MUL": 4, "QUANTIZE": 2}),
    # x - mean(x) broadcasts: MUL by -1 (int16) then ADD (int16, general scale)
    "sub_broadcast_mean": (lambda: Fn(lambda s, x: s.l(x) - s.l(x).mean(-1, keepdim=True), l=nn.Linear(8, 6)),
                           (5, 8), None, {"CONV_2D": 4, "RESHAPE": 1, "MEAN": 3, "MUL": 4, "ADD": 3, "QUANTIZE": 2}),
    "sum_abs": (lambda: Fn(lambda s, x: torch.abs(s.l(x)).sum(1), l=nn.Linear(8, 6)), (5, 8), None,
                {"CONV_2D": 4, "RESHAPE": 1, "ABS": 3, "MEAN": 3, "QUANTIZE": 2}),
    "batch_matmul": (lambda: Fn(lambda s, x: s.q(x) @ s.k(x).transpose(-1, -2), q=nn.Linear(8, 8), k=nn.Linear(8, 8)),
                     (6, 8), None, {"CONV_2D": 4, "RESHAPE": 1, "TRANSPOSE": 5, "BATCH_MATMUL": 3, "QUANTIZE": 2}),
    "lstm_cell": (lambda: Fn(lambda s, x: s.cell(x)[1], cell=nn.LSTMCell(10, 12)), (10,), None,
                  {"CONV_2D": 4, "RESHAPE": 1, "STRIDED_SLICE": 1, "LOGISTIC": 3, "TANH": 3, "MUL": 4, "ADD": 3,
                   "QUANTIZE": 2}),
}


def _op_case(case: str, tmp_path: Path, scale: float = 1.5, n: int = 24, **opts) -> Built16:
    make, shape, which, _ = OP_CASES[case]
    torch.manual_seed(0)
    model = make().eval()
    rng = np.random.default_rng(1)
    cal = rng.normal(0, 1, (N_CAL, *shape)).astype(np.float32)
    ev = rng.normal(0, scale, (n, *shape)).astype(np.float32)   # wider than calibration: saturation too
    g = float_graph(model, [shape])
    ranges = calibrate(g, [cal], method="minmax")
    tensors = capable(g)
    return Built16(g, ranges, tensors if which is None else [tensors[i] for i in which], ev, tmp_path, **opts)


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_single_16x8_ops_bit_exact(case, tmp_path):
    b = _op_case(case, tmp_path)
    assert b.int16_tensors()
    b.assert_exact()
    check_flatbuffer_types(b)
    want = {k: v if isinstance(v, set) else {v} for k, v in OP_CASES[case][3].items()}
    assert b.op_versions() == want


def test_requantize_both_directions(tmp_path):
    b = _op_case("requantize_both_directions", tmp_path, scale=3.0, n=32)
    assert b.quantize_directions() == {(TT.INT8, TT.INT16), (TT.INT16, TT.INT8)}
    nodes = [(n.op, b.graph.t(n.inputs[0]).dtype, b.graph.t(n.outputs[0]).dtype) for n in b.graph.nodes]
    assert ("requantize", "int8", "int16") in nodes and ("requantize", "int16", "int8") in nodes
    b.assert_exact()


@pytest.mark.parametrize("case", ["conv2d_relu", "add_relu", "max_avg_pool"])
def test_int16_output_io_float(case, tmp_path):
    """--io float: DEQUANTIZE (version 3) from the int16 output."""
    b = _op_case(case, tmp_path, io="float")
    sg = b.model.subgraphs[0]
    assert sg.tensors[sg.inputs[0]].type == TT.FLOAT32 and sg.tensors[sg.outputs[0]].type == TT.FLOAT32
    last = sg.operators[-1]
    assert builtin_code(b.model.operatorCodes[last.opcodeIndex]) == BO.DEQUANTIZE
    assert b.model.operatorCodes[last.opcodeIndex].version == 3
    assert sg.tensors[last.inputs[0]].type == TT.INT16
    b.assert_exact()


def test_native_fully_connected_int16(tmp_path):
    """linear_op='fully_connected': FULLY_CONNECTED version 7 (16x8), int64 bias; exact in TFLite
    Micro. LiteRT's reference int16 FC requantizes in double precision, like its int8 one, so
    it is measured there (within 1 LSB), not required."""
    b = _op_case("linear_relu_linear", tmp_path, linear_op="fully_connected")
    assert b.op_versions() == {"FULLY_CONNECTED": {7}, "QUANTIZE": {2}}
    check_flatbuffer_types(b)
    assert [r.must_be_exact for r in b.runs] == [True, False, False]
    b.assert_exact(runs=(0,))
    assert metrics.compare(b.ref, b.runs[1].outputs)["max_abs_diff_lsb"] <= 1


def test_reduced_multiplier_saturates_at_0x7fff(tmp_path):
    """Requantization multipliers >= 0x7FFF0000 use the Q15 multiplier 0x7FFF (not 0x8000) in
    TFLite's int64 MultiplyByQuantizedMultiplier: the reference agrees in both runtimes."""
    make, shape, _, _ = OP_CASES["conv2d_relu"]
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    cal = rng.normal(0, 1, (N_CAL, *shape)).astype(np.float32)
    ev = rng.normal(0, 3, (32, *shape)).astype(np.float32)
    g = float_graph(make().eval(), [shape])
    q = quantize(promote(g, capable(g)), calibrate(g, [cal], method="minmax"))
    conv = next(n for n in q.nodes if n.op == "conv2d")
    s_in = float(q.t(conv.inputs[0]).quant.scale[0])
    ws = q.t(conv.inputs[1]).quant.scale
    target = s_in * float(ws[0]) / float(q.t(conv.outputs[0]).quant.scale[0])
    s_out = np.float32(s_in * float(ws[0]) / (0.999999 * 2.0 ** np.floor(np.log2(target))))
    q.t(conv.outputs[0]).quant = QuantParams(s_out, 0)
    set_requant_params(conv, q, s_in, ws, float(s_out), 0, 0)
    assert conv.attrs["multiplier"][0] >= 0x7FFF8000    # (M + 2^15) >> 16 would be 0x8000
    b = Built16(None, None, [], ev, tmp_path, qgraph=q)
    b.assert_exact()


def test_add_int16_power_of_two_scales(tmp_path):
    """All ADD scales powers of two: with the schema default pot_scale_int16=true LiteRT would
    take (and here refuse to prepare) its power-of-two path; written false, every runtime runs
    the general-scale algorithm of the reference."""
    from edgeq.ops.add import set_add_params
    make, shape, _, _ = OP_CASES["add_relu"]
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    cal = rng.normal(0, 1, (N_CAL, *shape)).astype(np.float32)
    ev = rng.normal(0, 2, (32, *shape)).astype(np.float32)
    g = float_graph(make().eval(), [shape])
    q = quantize(promote(g, capable(g)), calibrate(g, [cal], method="minmax"))

    def pot(x: float) -> np.float32:
        return np.float32(2.0 ** np.ceil(np.log2(x)))

    for n in q.nodes:
        if n.op == "conv2d":
            s_out = pot(float(q.t(n.outputs[0]).quant.scale[0]))
            q.t(n.outputs[0]).quant = QuantParams(s_out, 0)
            set_requant_params(n, q, float(q.t(n.inputs[0]).quant.scale[0]), q.t(n.inputs[1]).quant.scale,
                               float(s_out), 0, 0)
        elif n.op == "add":
            q.t(n.outputs[0]).quant = QuantParams(pot(2 * float(q.t(n.outputs[0]).quant.scale[0])), 0)
            set_add_params(n, q)
    b = Built16(None, None, [], ev, tmp_path, qgraph=q)
    b.assert_exact()
    check_flatbuffer_types(b)


# --- example models -------------------------------------------------------------------------

_FLOAT: dict[str, tuple] = {}


def _float_and_ranges(name: str):  # noqa: ANN202
    if name not in _FLOAT:
        factory, shape = MODELS[name]
        g = float_graph(factory(), [shape])
        _FLOAT[name] = (g, calibrate(g, [synthetic_data(name, N_CAL, 0)], method="minmax"))
    return _FLOAT[name]


def mixed_selection(tensors: list[str], variant: str = "mixed") -> list[str]:
    """The promoted tensors of a variant: all capable ones, every third one ("mixed": int8 and
    int16 regions alternate, requantizing both ways) or the first two ("head")."""
    return {"all": tensors, "mixed": tensors[::3], "head": tensors[:2]}[variant]


@pytest.mark.parametrize("variant", ["all", "mixed"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_16x8_bit_exact(name, variant, tmp_path):
    g, ranges = _float_and_ranges(name)
    tensors = capable(g)
    b = Built16(g, ranges, mixed_selection(tensors, variant), synthetic_data(name, N_EVAL, 1), tmp_path)
    assert b.int16_tensors()
    b.assert_exact()
    check_flatbuffer_types(b)
    if variant == "mixed":
        assert any(n.op == "requantize" for n in b.graph.nodes)
    else:   # the whole model 16x8 but the int8 input: one QUANTIZE int8 -> int16 at the start
        assert (TT.INT8, TT.INT16) in b.quantize_directions()
    SUMMARY[(name, variant)] = b.stats()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["all", "mixed", "head"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_16x8_many_saturated_samples_float_io(name, variant, tmp_path):
    """256 samples at 3x the calibration range, MSE-calibrated int8 regions, float boundary."""
    factory, shape = MODELS[name]
    g = float_graph(factory(), [shape])
    ranges = calibrate(g, [synthetic_data(name, 64, 0)])
    tensors = capable(g)
    b = Built16(g, ranges, mixed_selection(tensors, variant), 3 * synthetic_data(name, 256, 2), tmp_path,
                io="float")
    b.assert_exact()
    SUMMARY[(name, variant + "/saturated")] = b.stats()


def test_summary_of_16x8_models():
    """Prints the per-runtime figures collected above (run with -s to see)."""
    for (name, variant), stats in sorted(SUMMARY.items()):
        cells = "  ".join(f"{rt.split(' (')[-1].rstrip(')') if '(' in rt else rt.split()[0]}: "
                          f"{frac:6.1%} max {lsb}" for rt, (frac, lsb) in stats.items())
        print(f"{name:20s} {variant:16s} {cells}")


def test_gru_with_its_hidden_state_in_int16_bit_exact(tmp_path):
    """A loop state promoted as a whole (passes.precision): the WHILE body's layers on it run
    16x8 and the stacked int16 outputs accumulate from an int8 FILL QUANTIZEd to int16 (TFLite
    Micro's FILL has no int16 values), bit-exact in TFLite Micro and LiteRT's reference kernels."""
    torch.manual_seed(0)
    model = Fn(lambda s, x: s.rnn(x)[0], rnn=nn.GRU(4, 8, batch_first=True)).eval()
    g = float_graph(model, [(12, 4)])
    rng = np.random.default_rng(0)
    cal, ev = (rng.normal(0, 1, (n, 12, 4)).astype(np.float32) for n in (N_CAL, N_EVAL))
    states = [new for _, _, new in carried_states(g)]
    assert len(states) == 1
    b = Built16(g, calibrate(g, [cal], method="minmax"), states, ev, tmp_path)
    assert b.graph.t(b.graph.outputs[0]).dtype == "int16"
    b.assert_exact()
    body = next(sg for sg in b.model.subgraphs if sg.name.decode().endswith("_body"))
    assert any(t.type == TT.INT16 for t in body.tensors)
    fill = [op for op in b.model.subgraphs[0].operators if builtin_code(b.model.operatorCodes[op.opcodeIndex]) == BO.FILL]
    assert [b.model.subgraphs[0].tensors[op.outputs[0]].type for op in fill] == [TT.INT8]
    assert (TT.INT8, TT.INT16) in b.quantize_directions()
