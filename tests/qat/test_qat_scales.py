"""Learned activation scales (``learn_scales=True``, LSQ): LSQ's gradient against its formula by
hand; scales that train and stay bit-exact with the reference interpreter on the graph the
module exports; ties and fixed scales kept; a build of the trained module bit-exact on TFLite
Micro; an untrained module builds the model's artifacts."""
import math

import numpy as np
import pytest
import torch

import edgeq
from edgeq.errors import UnsupportedOpError
from edgeq.ops import get_op
from edgeq.ops.base import OpDef
from edgeq.qat import scales as sc
from tests.helpers import data
from tests.op_cases import CASES
from tests.qat.conftest import assert_exact, reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lsq_value_and_gradients_by_hand():
    s = torch.tensor(0.5, requires_grad=True)
    v = torch.tensor([0.3, -0.7, 100.0, -100.0, 1.24], requires_grad=True)
    zp, lo, hi, g = -3, -128, 127, 0.25
    q = torch.tensor([1 + zp, -1 + zp, 127, -128, 2 + zp])     # round(v / s) + zp, clipped to [lo, hi]
    y = sc.lsq(v, s, 0.5, q, zp, lo, hi, g)
    np.testing.assert_array_equal(y.detach().numpy(), np.array([0.5, -0.5, 65.0, -62.5, 1.0], np.float32))
    y.sum().backward()
    # d/ds: round(v/s) - v/s inside, the clipped bound (qmax - zp, qmin - zp) outside; times g
    expect_s = g * ((1 - 0.6) + (-1 + 1.4) + (127 + 3) + (-128 + 3) + (2 - 2.48))
    assert math.isclose(float(s.grad), expect_s, rel_tol=1e-5)
    np.testing.assert_array_equal(v.grad.numpy(), [1, 1, 0, 0, 1])    # straight through inside the range


def test_gradient_scale_is_one_over_sqrt_elements_times_qp():
    qm = edgeq.qat.prepare(*_case("conv3x3"), "onnx", learn_scales=True)
    name = qm.graph.inputs[0]
    zp = int(qm.graph.t(name).quant.zero_point[0])
    assert math.isclose(sc.grad_scale(qm.graph, name), 1 / math.sqrt(3 * 9 * 9 * (127 - zp)))


def _case(name, n=48):
    model, shape = CASES[name]
    return model, data(shape, n)


def _train(qm, x, steps=3, lr_scales=2e-3):
    """A few Adam steps towards other outputs; returns the scales' gradients of the first step."""
    target = [torch.from_numpy(r).float().flip(0) for r in reference(qm, x)[1]]
    opt = torch.optim.Adam([{"params": qm.weight_parameters(), "lr": 0.02},
                            {"params": qm.scale_parameters(), "lr": lr_scales}])
    first = None
    for _ in range(steps):
        opt.zero_grad()
        ys = qm(torch.from_numpy(x))
        ys = ys if isinstance(ys, tuple) else (ys,)
        sum(((y - t) ** 2).mean() for y, t in zip(ys, target) if y.is_floating_point()).backward()
        if first is None:
            first = [None if p.grad is None else p.grad.clone() for p in qm.scale_parameters()]
        opt.step()
    return first


CASES_LEARNED = ["conv3x3", "conv_relu6", "linear_relu", "add_relu", "add_broadcast_channels", "softmax",
                 "flatten_linear", "concat_channels_requant", "concat_width", "concat_linear",
                 "conv1d_bn_relu_pool_stack", "conv_transpose_bn_relu6"]


@pytest.mark.parametrize("name", CASES_LEARNED)
def test_learned_scales_train_and_stay_bit_exact(name):
    model, x = _case(name)
    qm = edgeq.qat.prepare(model, x, "onnx", learn_scales=True)
    assert qm.scale_parameters()
    assert_exact(qm, x)
    before = [float(p.detach()) for p in qm.scale_parameters()]
    grads = _train(qm, x)
    assert all(gr is not None and torch.isfinite(gr) for gr in grads)
    assert any(float(gr) != 0 for gr in grads), "no scale got a gradient"
    after = [float(p.detach()) for p in qm.scale_parameters()]
    moved = [a != b for a, b in zip(after, before)]
    assert all(moved[i] for i, gr in enumerate(grads) if float(gr) != 0), "a scale with a gradient did not move"
    g = qm.quantized_graph()
    for tensor, k in qm._scale_slot.items():     # the exported graph carries the learned float32 scales
        node = g.producer(tensor)
        if node is None or type(get_op(node.op)).adjust_output_quant is OpDef.adjust_output_quant:
            assert float(g.t(tensor).quant.scale[0]) == float(np.float32(after[k])), tensor
    assert_exact(qm, x)
    assert_exact(qm, data(CASES[name][1], 48, seed=2))


@pytest.mark.parametrize("name", sorted(set(CASES) - set(CASES_LEARNED)))
def test_every_op_case_bit_exact_with_learned_scales(name):
    model, x = _case(name)
    try:
        qm = edgeq.qat.prepare(model, x, "onnx", learn_scales=True)
    except UnsupportedOpError as e:
        assert "QAT" in str(e), str(e)
        pytest.skip(f"not supported by QAT: {e}")
    assert_exact(qm, x)
    if not qm.scale_parameters() or not any(y.is_floating_point() for y in _as_tuple(qm(torch.from_numpy(x)))):
        return
    before = [float(p.detach()) for p in qm.scale_parameters()]
    _train(qm, x, steps=2)
    assert [float(p.detach()) for p in qm.scale_parameters()] != before, "no scale moved"
    assert_exact(qm, data(CASES[name][1], 48, seed=2))


def _as_tuple(y):
    return y if isinstance(y, tuple) else (y,)


def test_ties_and_fixed_scales_are_kept():
    model, x = _case("conv1d_bn_relu_pool_stack")          # max pool: its output carries its input's scale
    qm = edgeq.qat.prepare(model, x, "onnx", learn_scales=True)
    _train(qm, x, lr_scales=5e-3)
    g = qm.quantized_graph()
    pools = [n for n in g.nodes if get_op(n.op).same_quant_as_input and n.inputs[0] in g.tensors]
    assert pools
    for n in pools:
        assert g.t(n.outputs[0]).quant.to_dict() == g.t(n.inputs[0]).quant.to_dict()
    model, x = _case("softmax")
    qm = edgeq.qat.prepare(model, x, "onnx", learn_scales=True)
    _train(qm, x, lr_scales=5e-3)
    g = qm.quantized_graph()
    out = g.t(g.outputs[0])
    assert out.name not in qm._scale_slot
    assert out.quant.scalar() == get_op("softmax").fixed_output_quant


def test_default_has_no_learned_scales():
    model, x = _case("conv3x3")
    qm = edgeq.qat.prepare(model, x, "onnx")
    assert qm.scale_parameters() == [] and len(list(qm.parameters())) == 2


def _artifacts(report):
    return {a["path"]: (report.out_dir / a["path"]).read_bytes() for a in report["artifacts"]}


def test_untrained_learned_scales_build_the_models_artifacts(tmp_path):
    model, x = _case("add_relu", 32)
    direct = edgeq.build(model, x, "onnx", tmp_path / "direct")
    qm = edgeq.qat.prepare(model, x, "onnx", learn_scales=True)
    assert _artifacts(edgeq.build(qm, x, "onnx", tmp_path / "qat")) == _artifacts(direct)


@pytest.mark.parametrize("name,classifier", [("flatten_linear", True), ("concat_channels_requant", False)])
def test_trained_scales_build_bit_exact_for_tflite(tmp_path, name, classifier):
    model, x = _case(name, 64)
    labels = np.arange(64) % 3
    qm = edgeq.qat.prepare(model, x, "tflite", learn_scales=True)
    before = [float(p.detach()) for p in qm.scale_parameters()]
    opt = torch.optim.Adam([{"params": qm.weight_parameters(), "lr": 0.02},
                            {"params": qm.scale_parameters(), "lr": 2e-3}])
    for _ in range(10):
        opt.zero_grad()
        y = qm(torch.from_numpy(x)).flatten(1)
        torch.nn.functional.cross_entropy(y, torch.from_numpy(labels)).backward()
        opt.step()
    assert [float(p.detach()) for p in qm.scale_parameters()] != before
    with torch.no_grad():
        mine = qm(torch.from_numpy(x)).flatten(1).argmax(1).numpy()
    rep = edgeq.build(qm, x, "tflite", tmp_path / "trained", eval_labels=labels)
    assert not rep["failures"], rep["failures"]
    assert rep["qat"]["exact_fraction"] == 1.0
    exact = [v for v in rep["validation"] if v["must_be_exact"]]
    assert any("micro" in v["runtime"].lower() for v in exact), rep["validation"]
    for v in exact:     # every runtime held to the integers (TFLite Micro) computes what the module computed
        assert v["exact_fraction"] == 1.0, v
        if classifier:
            assert v["accuracy"] == float((mine == labels).mean()), v


def test_unsupported_ops_still_refused_with_learned_scales():
    gru = torch.nn.GRU(4, 6, batch_first=True)       # a recurrent loop (scan): no QAT kernel yet
    x = np.random.default_rng(0).normal(size=(16, 5, 4)).astype(np.float32)
    with pytest.raises(UnsupportedOpError, match="has no QAT kernel"):
        edgeq.qat.prepare(_LastStep(gru).eval(), x, "onnx", learn_scales=True)


class _LastStep(torch.nn.Module):
    def __init__(self, rnn: torch.nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0][:, -1]


def test_int16_scales_stay_fixed_and_bit_exact():
    model, x = _case("conv_pools_16x8")
    qm = edgeq.qat.prepare(model, x, "tflite", precision="16x8", learn_scales=True)
    wide = [n for n, t in qm.graph.tensors.items() if t.dtype == "int16" and t.quant is not None]
    assert wide and not set(wide) & set(qm._scale_slot)
    before = {n: qm.graph.t(n).quant.to_dict() for n in wide}
    _train(qm, x, steps=2)
    g = qm.quantized_graph()
    assert {n: g.t(n).quant.to_dict() for n in wide if n in g.tensors} == {n: before[n] for n in wide if n in g.tensors}
    assert_exact(qm, x)
