"""Learned weight rounding (passes.adaround, ``--rounding adaround``): each layer's rounding is
floor or ceil of w/s and never reconstructs its output worse than nearest; builds with it stay
bit-exact with the reference and deterministic; the CLI option parses."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgeq
from edgeq import interpreter
from edgeq.cli import main
from edgeq.passes.adaround import MIN_ITERATIONS, learn_rounding
from edgeq.pipeline import float_graph, quantize_model
from tests.helpers import Fn, data, ort_held_to_qdq_bounds

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ITERATIONS = 150      # enough to move some weights off nearest, fast


def _conv_model():
    torch.manual_seed(3)
    return Fn(lambda s, x: F.relu(s.c(x)), c=nn.Conv2d(3, 6, 3, padding=1)).eval()


def _linear_model():
    torch.manual_seed(4)
    return Fn(lambda s, x: s.l(x), l=nn.Linear(24, 5)).eval()


def _stack_model():
    """conv, depthwise conv, pointwise conv and linear: every op learned rounding handles."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8, padding=1),
                         nn.ReLU6(), nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 6 * 6, 7)).eval()


def _nearest(model, shape, x):
    g = float_graph(model, [shape])
    return quantize_model(g, [x], options={"equalization": False, "bias_correction": False})


def _reconstruction_error(model, x, x_q, w_int, scale):
    """||f(x; W) - f(x_q; s * W_int)||^2 / ||f(x; W)||^2 computed from the torch module alone
    (its own weights and bias, torch's conv / linear, the activation of the module's forward)."""
    layer = model.c if hasattr(model, "c") else model.l
    act = F.relu if hasattr(model, "c") else (lambda y: y)
    w = layer.weight.detach().double()
    shape = (-1,) + (1,) * (w.dim() - 1)
    w_q = torch.from_numpy(w_int.astype(np.float64)) * torch.from_numpy(scale.astype(np.float64)).reshape(shape)
    fn = (lambda inp, ww: F.conv2d(inp, ww, layer.bias.detach().double(), padding=1)) if hasattr(model, "c") else \
        (lambda inp, ww: F.linear(inp, ww, layer.bias.detach().double()))
    ref = act(fn(torch.from_numpy(x).double(), w))
    got = act(fn(torch.from_numpy(x_q).double(), w_q))
    return float(((ref - got) ** 2).sum() / (ref ** 2).sum())


@pytest.mark.parametrize("make, shape", [(_conv_model, (3, 6, 6)), (_linear_model, (24,))], ids=["conv", "linear"])
def test_learned_rounding_never_reconstructs_worse_than_nearest(make, shape):
    model = make()
    x = data(shape, n=64, seed=1)
    near = _nearest(model, shape, x)
    q, rows = learn_rounding(near.quantized_float_graph, near.graph, [x], budget_s=60, iterations=ITERATIONS)
    (node,) = [n for n in q.nodes if n.op in ("conv2d", "linear")]
    (nnode,) = [n for n in near.graph.nodes if n.op == node.op]
    # the layer's input as the integer graph sees it: the graph input, quantized and dequantized
    x_q = interpreter.dequantize(q, q.inputs[0], interpreter.quantize_input(q, 0, x))
    w = q.t(node.inputs[1])
    scale = w.quant.scale
    err_nearest = _reconstruction_error(model, x, x_q, near.graph.t(nnode.inputs[1]).data, scale)
    err_learned = _reconstruction_error(model, x, x_q, w.data, scale)
    assert err_learned <= err_nearest
    assert err_learned < 0.995 * err_nearest, (err_learned, err_nearest)   # it did learn something here
    (row,) = rows
    assert row.kept and 0 < row.changed < 0.5 and row.iterations == ITERATIONS and not row.cut_short
    np.testing.assert_allclose([row.error_nearest, row.error_learned], [err_nearest, err_learned], rtol=1e-3)


def test_each_weight_is_floor_or_ceil_of_w_over_s():
    model = _stack_model()
    x = data((2, 6, 6), n=48, seed=2)
    near = _nearest(model, (2, 6, 6), x)
    q, rows = learn_rounding(near.quantized_float_graph, near.graph, [x], budget_s=60, iterations=ITERATIONS)
    assert [r.op for r in rows] == ["conv2d", "conv2d", "conv2d", "linear"]
    # the float weights straight from the torch module (batch-norm free: no folding)
    float_w = [m.weight.detach().double().numpy() for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    layers = [n for n in q.nodes if n.op in ("conv2d", "linear")]
    changed = 0
    for node, nnode, w in zip(layers, [n for n in near.graph.nodes if n.op in ("conv2d", "linear")], float_w):
        t = q.t(node.inputs[1])
        s = t.quant.scale.astype(np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
        ratio = w / s
        ints = t.data.astype(np.float64)
        assert t.data.dtype == np.int8 and np.abs(ints).max() <= 127
        assert np.all((ints == np.floor(ratio)) | (ints == np.ceil(ratio)) | (np.abs(ints) == 127)), node.name
        assert np.all(np.abs(ints - ratio) < 1), node.name
        np.testing.assert_array_equal(t.quant.scale, near.graph.t(nnode.inputs[1]).quant.scale)   # scales kept
        changed += int(np.sum(ints != near.graph.t(nnode.inputs[1]).data))
    assert changed > 0


def test_a_small_budget_plans_fewer_steps_for_every_layer_reproducibly():
    model = _stack_model()
    x = data((2, 6, 6), n=48, seed=2)
    near = _nearest(model, (2, 6, 6), x)
    runs = [learn_rounding(near.quantized_float_graph, near.graph, [x], budget_s=0.05, iterations=1000)
            for _ in range(2)]
    for q, rows in runs:
        assert {r.iterations for r in rows} == {MIN_ITERATIONS}
        assert all(r.cut_short and not r.stopped_by_clock for r in rows)
    weights = [[q.t(n.inputs[1]).data for n in q.nodes if n.op in ("conv2d", "linear")] for q, _ in runs]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def _build(tmp_path, target, rounding="adaround", **kw):
    model = _stack_model()
    cal, ev = data((2, 6, 6), n=48, seed=2), data((2, 6, 6), n=16, seed=7)
    return edgeq.build(model, cal, target, tmp_path, eval_data=ev, rounding=rounding, rounding_budget=60, **kw)


def _int8_weights_of_onnx(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    return sorted((a.shape, a.tobytes()) for a in map(numpy_helper.to_array, m.graph.initializer)
                  if a.dtype == np.int8 and a.ndim >= 2)


@pytest.mark.parametrize("target", ["onnx", "tflite", "host-c"])
def test_adaround_build_is_bit_exact_with_the_reference(target, tmp_path):
    rep = _build(tmp_path / "ada", target)
    near = _build(tmp_path / "near", target, rounding="nearest")
    assert not rep["failures"] and not near["failures"]
    r = rep["rounding"]
    assert r["tried"] == "adaround" and r["kept"] and r["sqnr_db_adaround"] > r["sqnr_db_nearest"]
    assert r["method"] == "adaround" and rep["quantization_passes"]["rounding"] == "adaround"
    assert any(x["kept"] for x in r["layers"]) and all(x["error_learned"] <= x["error_nearest"] for x in r["layers"])
    assert near["rounding"] == {"method": "nearest"}
    exact = [v for v in rep["validation"] if v["must_be_exact"]]
    if target == "onnx":
        # onnxruntime requantizes in float (never must-be-exact): it agrees with the reference as
        # closely as with nearest rounding; the file holds the learned integers themselves
        for got, base in zip(rep["validation"], near["validation"]):
            if ort_held_to_qdq_bounds(got["runtime"]):
                assert got["max_abs_diff_lsb"] <= max(1, base["max_abs_diff_lsb"]), (got, base)
        model, cal = _stack_model(), data((2, 6, 6), n=48, seed=2)
        learned = quantize_model(float_graph(model, [(2, 6, 6)]), [cal], options={"rounding": "adaround",
                                                                                   "rounding_budget": 60}).graph
        expect = sorted((t.data.shape, t.data.tobytes()) for t in learned.tensors.values()
                        if t.is_constant and t.data.dtype == np.int8 and t.data.ndim >= 2)
        assert _int8_weights_of_onnx(tmp_path / "ada" / "model.onnx") == expect
        assert _int8_weights_of_onnx(tmp_path / "near" / "model.onnx") != expect
    else:
        assert exact and all(v["exact_fraction"] == 1.0 and v["max_abs_diff_lsb"] == 0 for v in exact), \
            rep["validation"]
    md = (tmp_path / "ada" / "report.md").read_text()
    assert "## Learned rounding" in md and "| error nearest | error learned |" in md


def test_adaround_builds_are_byte_identical(tmp_path):
    for d in ("a", "b"):
        _build(tmp_path / d, "onnx", max_eval_samples=4)
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()


def test_cli_rounding_option(tmp_path):
    model = tmp_path / "m.pt2"
    cal = tmp_path / "cal.npy"
    x = data((2, 6, 6), n=32, seed=2)
    torch.export.save(torch.export.export(_stack_model(), (torch.from_numpy(x[:1]),)), model)
    np.save(cal, x)
    out = tmp_path / "out"
    rc = main(["build", str(model), "--target", "onnx", "--calibration", str(cal), "-o", str(out), "--quiet",
               "--rounding", "adaround", "--rounding-budget", "30", "--max-eval-samples", "4"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["rounding"]["tried"] == "adaround" and rep["rounding"]["budget_s"] == 30
