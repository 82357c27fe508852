"""The precision pass: which nodes become 16x8 and where requantize nodes go."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.calibration import calibrate
from edgeq.ops import get_op
from edgeq.passes.precision import int16_capable, promote
from edgeq.pipeline import float_graph
from edgeq.quantize import quantize


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
    for n in q.nodes:       # every node has one activation type, except the converters
        if n.op == "requantize":
            assert q.t(n.inputs[0]).dtype != q.t(n.outputs[0]).dtype
            continue
        types = {q.t(i).dtype for i in n.inputs if not q.t(i).is_constant} | {q.t(o).dtype for o in n.outputs}
        assert len(types) == 1, (n.name, types)


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
