"""TFLite target: every example model (and every single-op test model) is bit-exact with the
integer reference in TFLite Micro and LiteRT's reference kernels; LiteRT's default kernels are
measured (exact fraction, max LSB). Plus the file format, determinism, --io float,
--input-layout nchw, error messages and the first-mismatch locator."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter, metrics
from edgeq.errors import UnsupportedOpError
from edgeq.pipeline import float_graph, quantized_graph
from edgeq.targets import load_profile, target_module
from edgeq.targets.tflite import lower as tfl_lower
from edgeq.targets.tflite.schema import builtin_code, fb, read_model
from examples.models import MODELS, synthetic_data
from tests.helpers import Fn
from tests.op_cases import CASES as OP_CASES

N_CAL, N_EVAL = 64, 32
# The default run calibrates with min/max (the MSE search costs seconds per model and is not what
# these tests are about); the slow test uses the default MSE calibration.
PROFILE = load_profile("tflite")
T = target_module(PROFILE)
XNNPACK_SUMMARY: dict[str, tuple[float, int]] = {}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # see tests/conftest.py


class Built:
    """One model through the tflite target: graphs, artifact, reference and runtime outputs."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...], cal: np.ndarray, ev: np.ndarray,
                 out_dir: Path, io: str = "int8", input_layout: str = "nhwc", method: str = "minmax",
                 qgraph=None, **opts) -> None:  # noqa: ANN001
        self.options = {**PROFILE.quantizer, **opts, "io": io, "input_layout": input_layout,
                        "description": "test model", "edgeq_version": "test"}
        if qgraph is None:
            qgraph = quantized_graph(float_graph(model, [shape]), [cal], method=method, options=self.options)
        self.qgraph = qgraph
        self.graph = T.prepare(self.qgraph, PROFILE, self.options)
        self.artifacts = T.emit(self.graph, out_dir, PROFILE, self.options)
        self.ev = ev
        q = interpreter.quantize_input(self.graph, 0, ev, T.input_rounding)
        if q.ndim == 4 and input_layout == "nhwc":
            q = np.ascontiguousarray(q.transpose(0, 2, 3, 1))
        self.int_inputs = [q]
        res = interpreter.run(self.graph, self.int_inputs)
        self.ref = [res[n] for n in self.graph.outputs]
        self.runs = T.run(self.graph, self.artifacts, PROFILE, self.int_inputs, [ev], self.options)

    def compare(self) -> dict[str, dict]:
        return {r.runtime: {**metrics.compare(self.ref, r.outputs), "must_be_exact": r.must_be_exact, **r.extra}
                for r in self.runs}

    def assert_exact(self) -> None:
        for r in self.runs:
            c = metrics.compare(self.ref, r.outputs)
            if r.must_be_exact and c["exact_fraction"] < 1.0:
                bad = next(i for i in range(self.ev.shape[0])
                           if any(not np.array_equal(a[i], b[i]) for a, b in zip(self.ref, r.outputs)))
                sample = [x[bad:bad + 1] for x in self.int_inputs]
                where = T.first_mismatch(self.graph, self.artifacts, PROFILE, sample,
                                         interpreter.run(self.graph, sample, keep=True), self.options)
                pytest.fail(f"{r.runtime}: exact {c['exact_fraction']:.4f}, max {c['max_abs_diff_lsb']} LSB; {where}")
        assert [r.must_be_exact for r in self.runs] == [True, True, False]


_CACHE: dict[str, Built] = {}


def built(name: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    if name not in _CACHE:
        factory, shape = MODELS[name]
        _CACHE[name] = Built(factory(), shape, synthetic_data(name, N_CAL, 0), synthetic_data(name, N_EVAL, 1),
                             tmp_path_factory.mktemp(name))
    return _CACHE[name]


# --- bit-exactness ---------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_bit_exact_in_tflm_and_litert_reference(name, tmp_path_factory, record_property):
    b = built(name, tmp_path_factory)
    b.assert_exact()
    cmp = b.compare()
    xnn = cmp[b.runs[2].runtime]
    XNNPACK_SUMMARY[name] = (xnn["exact_fraction"], xnn["max_abs_diff_lsb"])
    record_property("xnnpack_exact_fraction", xnn["exact_fraction"])
    record_property("xnnpack_max_lsb", xnn["max_abs_diff_lsb"])
    record_property("tflm_arena_bytes", b.runs[0].extra["arena_used_bytes"])
    print(f"\n{name}: XNNPACK exact {xnn['exact_fraction']:.3f}, max {xnn['max_abs_diff_lsb']} LSB; "
          f"TFLM arena {b.runs[0].extra['arena_used_bytes']} B; {b.artifacts[0].stat().st_size} B")
    # LiteRT's optimised kernels round once (single rounding) where the reference rounds twice:
    # they may differ, but only by a few LSB
    assert xnn["max_abs_diff_lsb"] <= 32
    assert b.runs[0].extra["arena_used_bytes"] > 0


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_single_op_models_bit_exact(case, tmp_path):
    model, shape = OP_CASES[case]
    rng = np.random.default_rng(0)
    cal = rng.normal(0, 1, (48, *shape)).astype(np.float32)
    ev = rng.normal(0, 1.5, (24, *shape)).astype(np.float32)   # wider than calibration: saturation too
    if case in NOT_ON_TFLITE:
        with pytest.raises(UnsupportedOpError, match=NOT_ON_TFLITE[case] + ".*edgeq targets --ops"):
            Built(model.eval(), shape, cal, ev, tmp_path)
        return
    Built(model.eval(), shape, cal, ev, tmp_path).assert_exact()


#: single-op cases the tflite target rejects by design, with the op its error names
NOT_ON_TFLITE = {"conv_transpose_grouped_dilated": "'conv_transpose2d'"}



def _seeded(fn):
    torch.manual_seed(0)
    return fn()


GLUE_CASES = {
    # standalone clamps (nothing to fuse into): RELU requantizing, QUANTIZE + MAXIMUM/MINIMUM
    "relu_on_input": (lambda: Fn(lambda s, x: s.c(torch.relu(x)), c=nn.Conv2d(3, 4, 3, padding=1)), (3, 6, 6)),
    "relu6_on_input": (lambda: Fn(lambda s, x: s.c(nn.functional.relu6(x)), c=nn.Conv2d(3, 4, 1)), (3, 5, 5)),
    # fused clamps TFLite has no activation for: op + MAXIMUM / MINIMUM
    "conv_hardtanh": (lambda: Fn(lambda s, x: s.d(nn.functional.hardtanh(s.c(x), -0.3, 0.8)),
                                  c=nn.Conv2d(3, 8, 3, padding=1), d=nn.Conv2d(8, 4, 1)), (3, 6, 6)),
    "linear_clamp_min": (lambda: Fn(lambda s, x: s.b(torch.clamp(s.a(x), min=0.2)),
                                     a=nn.Linear(12, 9), b=nn.Linear(9, 3)), (12,)),
    # explicit padding TFLite's SAME cannot express (PAD / PADV2), SAME-compatible avg pool
    "pools": (lambda: Fn(lambda s, x: nn.functional.avg_pool2d(
        nn.functional.max_pool2d(nn.functional.max_pool2d(s.c(x), 3, 2, 1), 2, 2, ceil_mode=True),
        3, 1, 1, count_include_pad=False), c=nn.Conv2d(3, 8, 3, padding=1)), (3, 15, 13)),
    "dw_stride2_relu6": (lambda: Fn(lambda s, x: nn.functional.relu6(s.c(x)),
                                     c=nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4)), (4, 9, 8)),
    # a linear whose output feeds two linears (stays [1, 1, 1, K]) and an add
    "linear_two_users": (lambda: Fn(lambda s, x: s.b(s.a(x)) + s.c(torch.relu(s.a(x))),
                                     a=nn.Linear(16, 8), b=nn.Linear(8, 4), c=nn.Linear(8, 4)), (16,)),
}


@pytest.mark.parametrize("case", sorted(GLUE_CASES))
def test_glue_operators_bit_exact(case, tmp_path):
    make, shape = GLUE_CASES[case]
    rng = np.random.default_rng(1)
    cal = rng.normal(0, 1, (48, *shape)).astype(np.float32)
    ev = rng.normal(0, 1.5, (24, *shape)).astype(np.float32)
    Built(_seeded(make).eval(), shape, cal, ev, tmp_path).assert_exact()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_bit_exact_many_saturated_samples_float_io(name, tmp_path):
    """256 samples at 3x the calibration range (saturation everywhere), float boundary."""
    factory, shape = MODELS[name]
    b = Built(factory(), shape, synthetic_data(name, N_CAL, 0), 3 * synthetic_data(name, 256, 2), tmp_path,
              io="float", method="mse")
    b.assert_exact()


# --- io, layout, determinism -------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet_digits", "mobilenet_v2_blocks"])
def test_io_float_and_nchw_input(name, tmp_path):
    factory, shape = MODELS[name]
    cal, ev = synthetic_data(name, N_CAL, 0), synthetic_data(name, N_EVAL, 1)
    qgraph = quantized_graph(float_graph(factory(), [shape]), [cal], method="minmax", options=PROFILE.quantizer)
    for io, layout in (("float", "nhwc"), ("float", "nchw"), ("int8", "nchw")):
        b = Built(None, shape, cal, ev, tmp_path / f"{io}_{layout}", io=io, input_layout=layout, qgraph=qgraph)
        b.assert_exact()
        m = read_model(b.artifacts[0].read_bytes())
        sg = m.subgraphs[0]
        tin, tout = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
        want = fb.TensorType.FLOAT32 if io == "float" else fb.TensorType.INT8
        assert tin.type == want and tout.type == want
        expect_shape = (1, *shape) if layout == "nchw" else (1, shape[1], shape[2], shape[0])
        assert tuple(tin.shape) == expect_shape
        codes = [builtin_code(m.operatorCodes[o.opcodeIndex]) for o in sg.operators]
        if io == "float":
            assert codes[0] == fb.BuiltinOperator.QUANTIZE and codes[-1] == fb.BuiltinOperator.DEQUANTIZE
        if layout == "nchw":      # one channel: NCHW and NHWC hold the same order, a RESHAPE does
            move = fb.BuiltinOperator.RESHAPE if shape[0] == 1 else fb.BuiltinOperator.TRANSPOSE
            assert move in codes[:2]


def test_io_float_rounds_ties_like_tflite_quantize(tmp_path):
    """Inputs on exact half-LSB points: QUANTIZE rounds half away from zero, like the reference."""
    name = "mlp_digits"
    factory, shape = MODELS[name]
    cal = synthetic_data(name, N_CAL, 0)
    probe = Built(factory(), shape, cal, cal[:2], tmp_path / "probe")
    scale, zp = probe.graph.t(probe.graph.inputs[0]).quant.scalar()
    ks = np.arange(-128 - zp, 128 - zp, dtype=np.float64)
    ties = ((ks[:, None] + np.array([0.5, -0.5, 0.25])) * np.float64(np.float32(scale))).astype(np.float32)
    ev = np.resize(ties.reshape(-1), (24, shape[0])).astype(np.float32)
    Built(factory(), shape, cal, ev, tmp_path / "ties", io="float").assert_exact()


def test_emit_is_deterministic(tmp_path_factory, tmp_path):
    b = built("mobilenet_v2_blocks", tmp_path_factory)
    again = T.emit(b.graph, tmp_path, PROFILE, b.options)
    assert again[0].read_bytes() == b.artifacts[0].read_bytes()
    # and from scratch: trace, calibrate, quantize, prepare, emit
    factory, shape = MODELS["lenet_digits"]
    cal, ev = synthetic_data("lenet_digits", N_CAL, 0), synthetic_data("lenet_digits", 4, 1)
    b1 = Built(factory(), shape, cal, ev, tmp_path / "a")
    b2 = Built(factory(), shape, cal, ev, tmp_path / "b")
    assert b1.artifacts[0].read_bytes() == b2.artifacts[0].read_bytes()


# --- the file itself ------------------------------------------------------------------------

def test_flatbuffer_layout_versions_quantization_metadata(tmp_path_factory):
    b = built("mobilenet_v2_blocks", tmp_path_factory)
    data = b.artifacts[0].read_bytes()
    assert data[4:8] == b"TFL3"
    raw = fb.Model.GetRootAsModel(data, 0)
    assert raw.Buffers(0).DataLength() == 0                       # the empty sentinel
    for i in range(1, raw.BuffersLength()):
        buf = raw.Buffers(i)
        if buf.DataLength():
            assert buf._tab.Vector(buf._tab.Offset(4)) % 16 == 0   # force_align: 16
    m = read_model(data)
    sg = m.subgraphs[0]
    versions = {fb.BuiltinOperator.CONV_2D: 3, fb.BuiltinOperator.DEPTHWISE_CONV_2D: 3, fb.BuiltinOperator.ADD: 2,
                fb.BuiltinOperator.AVERAGE_POOL_2D: 2, fb.BuiltinOperator.SOFTMAX: 2, fb.BuiltinOperator.RESHAPE: 1,
                fb.BuiltinOperator.PAD: 2}
    seen = set()
    for oc in m.operatorCodes:
        code = builtin_code(oc)
        seen.add(code)
        assert oc.version == versions[code], (code, oc.version)
        assert oc.deprecatedBuiltinCode == min(code, 127)
    assert {fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.BuiltinOperator.ADD,
            fb.BuiltinOperator.SOFTMAX} <= seen
    for op in sg.operators:
        code = builtin_code(m.operatorCodes[op.opcodeIndex])
        if code in (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D):
            w, bias = sg.tensors[op.inputs[1]], sg.tensors[op.inputs[2]]
            axis = 3 if code == fb.BuiltinOperator.DEPTHWISE_CONV_2D else 0
            assert w.type == fb.TensorType.INT8 and bias.type == fb.TensorType.INT32
            assert w.quantization.quantizedDimension == axis
            assert len(w.quantization.scale) == w.shape[axis] > 1
            assert not np.any(w.quantization.zeroPoint)
            x_scale = sg.tensors[op.inputs[0]].quantization.scale[0]
            np.testing.assert_array_equal(np.float32(x_scale) * w.quantization.scale.astype(np.float32),
                                          bias.quantization.scale.astype(np.float32))
        if code == fb.BuiltinOperator.SOFTMAX:
            q = sg.tensors[op.outputs[0]].quantization
            assert q.scale[0] == np.float32(1 / 256) and q.zeroPoint[0] == -128
    acts = [op.builtinOptions.fusedActivationFunction for op in sg.operators
            if builtin_code(m.operatorCodes[op.opcodeIndex]) == fb.BuiltinOperator.CONV_2D]
    assert fb.ActivationFunctionType.RELU6 in acts
    meta = {md.name.decode(): json.loads(bytes(m.buffers[md.buffer].data).decode()) for md in m.metadata}
    assert meta["edgeq"]["edgeq_version"] == "test" and meta["edgeq"]["description"] == "test model"
    assert m.description.decode() == "test model"


#: LiteRT op_version.cc versions for int8 operands of the issue-7 reduction/resampling/transposed-conv
#: lowerings (and their glue): MEAN, ARG_MAX, LOG_SOFTMAX 2; RESIZE_BILINEAR 3 with half_pixel_centers,
#: else 2; TRANSPOSE_CONV 3 (bias input, no fused activation)
ISSUE7_VERSIONS = {
    "mean_three_axes_keepdim": {"MEAN": 2, "RESHAPE": 1, "CONV_2D": 3},
    "mean_channels_width": {"MEAN": 2, "CONV_2D": 3},
    "argmax_channels_keepdim": {"ARG_MAX": 2, "RESHAPE": 1, "CONV_2D": 3},
    "log_softmax_channels_4d": {"LOG_SOFTMAX": 2},
    "log_softmax_middle_axis": {"LOG_SOFTMAX": 2, "TRANSPOSE": 2, "MUL": 2},
    "upsample_bilinear2x": {"RESIZE_BILINEAR": 3, "CONV_2D": 3},
    "upsample_bilinear_align_corners": {"RESIZE_BILINEAR": 2},
    "conv_transpose_s2_p1_op1_relu": {"TRANSPOSE_CONV": 3, "STRIDED_SLICE": 2},
    "conv_transpose_clamp": {"TRANSPOSE_CONV": 3, "MAXIMUM": 2},
}


@pytest.mark.parametrize("case", sorted(ISSUE7_VERSIONS))
def test_issue7_operator_versions(case, tmp_path):
    from edgeq.targets.tflite.schema import OP_NAMES
    model, shape = OP_CASES[case]
    cal = np.random.default_rng(0).normal(0, 1, (16, *shape)).astype(np.float32)
    qgraph = quantized_graph(float_graph(model.eval(), [shape]), [cal], method="minmax", options=PROFILE.quantizer)
    m = read_model(T.emit(T.prepare(qgraph, PROFILE, {}), tmp_path, PROFILE, {})[0].read_bytes())
    got = {OP_NAMES[builtin_code(oc)]: oc.version for oc in m.operatorCodes}
    assert got == ISSUE7_VERSIONS[case]


def test_memory_reports_tflm_arena(tmp_path_factory):
    b = built("ds_cnn", tmp_path_factory)
    mem = T.memory(b.graph, b.artifacts, PROFILE, b.options)
    assert mem["tflm_arena_bytes"] == b.runs[0].extra["arena_used_bytes"] > 0
    assert mem["model_bytes"] == b.artifacts[0].stat().st_size


def test_profile_ops_match_lowerings():
    assert sorted(PROFILE.ops) == tfl_lower.supported_ops()
    assert PROFILE.format == "tflite" and PROFILE.quantizer["linear_per_channel"] is True


# --- errors and diagnosis ------------------------------------------------------------------

def test_unsupported_op_names_op_module_and_supported_ops(tmp_path_factory):
    g = built("lenet_digits", tmp_path_factory).graph.copy()
    node = next(n for n in g.nodes if n.op == "max_pool2d")
    node.op = "fancy_pool"
    with pytest.raises(UnsupportedOpError) as e:
        T.emit(g, tmp_path_factory.mktemp("bad"), PROFILE, {})
    msg = str(e.value)
    assert "fancy_pool" in msg and node.module_path in msg and "conv2d" in msg and "softmax" in msg


def test_unexpressible_uses_name_the_module(tmp_path):
    """(softmax over a middle axis used to be unexpressible; it is lowered now)"""
    torch.manual_seed(0)
    sm = Fn(lambda s, x: torch.softmax(s.l(x).reshape(-1, 3, 4), dim=1), l=nn.Linear(6, 12)).eval()
    fg = float_graph(sm, [(6,)])
    qg = quantized_graph(fg, [np.random.default_rng(0).normal(size=(16, 6)).astype(np.float32)])
    b = Built(None, (6,), None, np.random.default_rng(1).normal(size=(8, 6)).astype(np.float32), tmp_path / "sm",
              qgraph=qg)   # softmax over a middle axis: TRANSPOSE around SOFTMAX, exact
    b.assert_exact()
    pool = Fn(lambda s, x: nn.functional.avg_pool2d(s.c(x), 3, 2, 1, count_include_pad=False),
               c=nn.Conv2d(2, 2, 1)).eval()
    fg = float_graph(pool, [(2, 8, 8)])
    qg = quantized_graph(fg, [np.random.default_rng(0).normal(size=(16, 2, 8, 8)).astype(np.float32)])
    with pytest.raises(UnsupportedOpError, match=r"avg_pool2d.*module 'fn'|avg_pool2d.*SAME"):
        T.emit(T.prepare(qg, PROFILE, {}), tmp_path, PROFILE, {})


def test_first_mismatch_names_the_layer(tmp_path_factory):
    b = built("resnet8", tmp_path_factory)
    bad = b.graph.copy()
    node = next(n for n in bad.nodes if n.module_path == "stack2.conv1.0")
    node.attrs["output_zero_point"] += 3          # the reference now disagrees from this layer on
    sample = [x[:1] for x in b.int_inputs]
    msg = T.first_mismatch(bad, b.artifacts, PROFILE, sample, interpreter.run(bad, sample, keep=True), b.options)
    assert f"'{node.name}'" in msg and "stack2.conv1.0" in msg and "LiteRT" in msg and "tflite-micro" in msg
    ok = T.first_mismatch(b.graph, b.artifacts, PROFILE, sample, interpreter.run(b.graph, sample, keep=True),
                          b.options)
    assert ok.startswith("no IR node output differs")


def test_native_fully_connected_option(tmp_path):
    """linear_op='fully_connected' writes FULLY_CONNECTED; TFLite Micro stays exact, LiteRT's
    reference FC (float requantization) is then only measured."""
    factory, shape = MODELS["mlp_digits"]
    b = Built(factory(), shape, synthetic_data("mlp_digits", N_CAL, 0), synthetic_data("mlp_digits", N_EVAL, 1),
              tmp_path, linear_op="fully_connected")
    m = read_model(b.artifacts[0].read_bytes())
    assert {builtin_code(oc) for oc in m.operatorCodes} == {fb.BuiltinOperator.FULLY_CONNECTED}
    assert [r.must_be_exact for r in b.runs] == [True, False, False]
    assert metrics.compare(b.ref, b.runs[0].outputs)["exact_fraction"] == 1.0
    assert metrics.compare(b.ref, b.runs[1].outputs)["max_abs_diff_lsb"] <= 2


def test_summary_of_default_kernels():
    """Prints the XNNPACK (LiteRT default) figures collected above (run with -s to see)."""
    for name, (frac, lsb) in sorted(XNNPACK_SUMMARY.items()):
        print(f"{name:22s} XNNPACK exact {frac:6.1%}  max {lsb} LSB")
