"""The precision pass: which nodes become 16x8 and where requantize nodes go."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.calibration import calibrate
from edgeq.ops import get_op
from edgeq.passes.precision import carried_states, int16_capable, promote
from edgeq.pipeline import float_graph
from edgeq.quantize import quantize
from tests.helpers import IntegratingLstm, integrating_lstm_data


class Net(nn.Module):
    """conv -> relu -> maxpool -> conv -> flatten -> linear -> softmax."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2, self.fc = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3), nn.Linear(36, 5)

    def forward(self, x):
        y = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        return torch.softmax(self.fc(torch.flatten(self.c2(y), 1)), 1)


@pytest.fixture(scope="module")
def setup():
    g = float_graph(Net().eval(), [(2, 10, 10)])
    x = np.random.default_rng(0).normal(size=(32, 2, 10, 10)).astype(np.float32)
    return g, x, calibrate(g, [x])


def _out(g, op_index):
    return [n for n in g.nodes if n.op not in ("reshape",)][op_index].outputs[0]


def test_promoting_one_tensor_widens_producer_and_consumers_only(setup):
    g, x, ranges = setup
    c1 = g.nodes[0].outputs[0]
    p = promote(g, [c1])
    q = quantize(p, ranges)
    ops = [(n.op, q.t(n.outputs[0]).dtype) for n in q.nodes]
    # input -> int16 for conv1; conv1, maxpool (carries its input's type) and conv2 (reads int16) run
    # 16x8; conv2's int16 output goes back to int8 before the int8 linear; softmax stays int8
    assert ops[0] == ("requantize", "int16")
    assert ("conv2d", "int16") in ops and ("max_pool2d", "int16") in ops
    assert ops.count(("requantize", "int8")) == 1
    assert [d for o, d in ops if o in ("linear", "softmax")] == ["int8", "int8"]
    _one_type_per_node(q)   # every node has one activation type, except the converters


def test_promoted_float_graph_computes_the_same_function(setup):
    g, x, _ = setup
    tensors = [n.outputs[0] for n in g.nodes if int16_capable(g, n.outputs[0])]
    p = promote(g, tensors)
    np.testing.assert_array_equal(interpreter.run(p, [x])[p.outputs[0]], interpreter.run(g, [x])[g.outputs[0]])


def test_int16_tensors_are_symmetric_over_the_observed_range(setup):
    g, x, ranges = setup
    c1 = g.nodes[0].outputs[0]
    q = quantize(promote(g, [c1]), ranges)
    lo, hi = ranges.observed[c1]
    scale, zp = q.t(c1).quant.scalar()
    assert zp == 0 and scale == pytest.approx(max(abs(lo), abs(hi)) / 32767, rel=1e-6)


def test_softmax_output_cannot_be_promoted(setup):
    g, _, _ = setup
    assert not int16_capable(g, g.outputs[0])
    assert get_op("softmax").supports_int16 is False
    with pytest.raises(ValueError, match="no int16 kernel"):
        promote(g, [g.outputs[0]])


def test_16x8_model_is_closer_to_float_than_int8(setup):
    g, x, ranges = setup
    ref = interpreter.run(g, [x], keep=True)
    tensors = [n.outputs[0] for n in g.nodes if int16_capable(g, n.outputs[0])]
    linear_out = next(n.outputs[0] for n in g.nodes if n.op == "linear")

    def err(q):
        out = interpreter.run(q, [interpreter.quantize_input(q, 0, x)], keep=True)
        name = next(n.outputs[0] for n in q.nodes if n.op == "linear")
        return np.abs(interpreter.dequantize(q, name, out[name]) - ref[q.t(name).range_of or linear_out]).mean()

    # int8 input and weights still bound the error; the activations no longer add theirs
    assert err(quantize(promote(g, tensors), ranges)) < 0.9 * err(quantize(g, ranges))


def test_broadcasting_add_stays_int8_next_to_int16_tensors():
    class SE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.c, self.d = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 1, 1)

        def forward(self, x):
            y = self.c(x)
            return y + self.d(y)          # (1, 4, H, W) + (1, 1, H, W): a broadcast

    g = float_graph(SE().eval(), [(3, 6, 6)])
    x = np.random.default_rng(1).normal(size=(16, 3, 6, 6)).astype(np.float32)
    add = next(n for n in g.nodes if n.op == "add")
    assert not int16_capable(g, add.outputs[0])
    q = quantize(promote(g, [g.nodes[0].outputs[0]]), calibrate(g, [x]))
    qadd = next(n for n in q.nodes if n.op == "add")
    assert {q.t(i).dtype for i in qadd.inputs} | {q.t(qadd.outputs[0]).dtype} == {"int8"}


def test_bias_correction_reaches_16x8_layers_reading_requantized_inputs(setup):
    from edgeq.passes.bias_correction import correct_bias
    g, x, ranges = setup
    q = quantize(promote(g, [g.nodes[0].outputs[0]]), ranges)
    first = next(n for n in q.nodes if n.op == "conv2d")
    assert q.t(first.inputs[0]).dtype == "int16" and first.inputs[0] not in g.tensors   # x -> x_int16
    qb = correct_bias(g, q, [x])
    corrected = next(n for n in qb.nodes if n.name == first.name)
    assert qb.t(corrected.inputs[2]).dtype == "int64"
    assert not np.array_equal(qb.t(corrected.inputs[2]).data, q.t(first.inputs[2]).data)


@pytest.fixture(scope="module")
def lstm():
    g = float_graph(IntegratingLstm().eval(), [(IntegratingLstm.steps, 4)])
    x = integrating_lstm_data(16, 0)
    return g, x, calibrate(g, [x])


def _one_type_per_node(g):
    """Every node has one activation type, except converters and loops (typed by their ties)."""
    for n in g.nodes:
        if get_op(n.op).bodies(n):
            continue
        if n.op == "requantize":
            assert g.t(n.inputs[0]).dtype != g.t(n.outputs[0]).dtype
            continue
        types = {g.t(i).dtype for i in n.inputs if not g.t(i).is_constant} | {g.t(o).dtype for o in n.outputs}
        assert len(types) == 1, (n.name, types)


def test_promoting_a_cell_state_promotes_its_tie_group_and_the_layers_on_it(lstm):
    g, _, ranges = lstm
    states = carried_states(g)
    assert [new.rsplit(".", 1)[1] for _, _, new in states] == ["h_new", "c_new"]   # LSTM: h, then c
    q = quantize(promote(g, [states[1][2]]), ranges)
    scan = next(n for n in q.nodes if n.op == "scan")
    body = scan.attrs["body"]
    k = scan.attrs["sequences"]

    def quant(name):
        t = q.tensors.get(name) or body.t(name)
        return t.dtype, t.quant.scalar()

    # the cell state: initial value, body input, new value, final output: one int16 quantization
    c_group = [scan.inputs[k + 1], body.inputs[k + 1], body.outputs[1], scan.outputs[1]]
    assert len({quant(m) for m in c_group}) == 1 and quant(c_group[0])[0] == "int16"
    assert quant(c_group[0])[1][1] == 0
    h_group = [scan.inputs[k], body.inputs[k], body.outputs[0], scan.outputs[0], scan.outputs[2]]
    assert {quant(m)[0] for m in h_group} == {"int8"}
    # 16x8: f * c, the new state and its tanh; f and i * g enter through requantize nodes, tanh(c)
    # leaves through one; the gates and the hidden state stay int8
    wide = {n.name.rsplit(".", 1)[1] for n in body.nodes if n.op != "requantize" and body.t(n.outputs[0]).dtype == "int16"}
    assert wide == {"f_c", "c_new", "tanh_c"}
    conversions = sorted((body.range_source(n.outputs[0]).rsplit(".", 1)[1], body.t(n.outputs[0]).dtype)
                         for n in body.nodes if n.op == "requantize")
    assert conversions == [("f", "int16"), ("i_g", "int16"), ("tanh_c", "int8")]
    _one_type_per_node(body)
    _one_type_per_node(q)


def test_promoted_loop_computes_the_same_float_function(lstm):
    g, x, _ = lstm
    p = promote(g, [new for _, _, new in carried_states(g)])
    np.testing.assert_array_equal(interpreter.run(p, [x])[p.outputs[0]], interpreter.run(g, [x])[g.outputs[0]])


def test_int16_cell_state_is_closer_to_float_than_int8(lstm):
    g, x, ranges = lstm
    ref = interpreter.run(g, [x])[g.outputs[0]]

    def err(q):
        out = interpreter.run(q, [interpreter.quantize_input(q, 0, x)])
        return np.abs(interpreter.dequantize(q, q.outputs[0], out[q.outputs[0]]) - ref).mean()

    c_new = carried_states(g)[1][2]
    assert err(quantize(promote(g, [c_new]), ranges)) < 0.5 * err(quantize(g, ranges))


def test_unknown_body_tensor_is_refused(lstm):
    g, _, _ = lstm
    with pytest.raises(ValueError, match="cannot be int16"):
        promote(g, ["lstm.l0.no_such_tensor"])
