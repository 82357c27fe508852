"""edgeq.quantize: a float graph and ranges -> the quantized graph (types, parameters, the
multipliers TFLite derives), checked against hand-computed values."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq.calibration import Ranges
from edgeq.errors import UnsupportedOpError
from edgeq.pipeline import float_graph
from edgeq.quant import scale_zero_point
from edgeq.quantize import quantize
from tests.helpers import Fn


@pytest.fixture(scope="module")
def linear_graph():
    torch.manual_seed(0)
    return float_graph(Fn(lambda s, x: s.l(x), l=nn.Linear(4, 3)).eval(), [(4,)])


def _ranges(g, lo=-2.0, hi=2.0):
    r = Ranges({n: (lo, hi) for n in g.activations()})
    r.observed = dict(r)
    return r


def test_types_and_parameters_of_a_linear_layer(linear_graph):
    g = linear_graph
    q = quantize(g, _ranges(g))
    node = q.nodes[0]
    x, w, b = (q.t(n) for n in node.inputs)
    assert q.quantized and x.dtype == "int8" and w.dtype == "int8" and b.dtype == "int32"
    assert np.abs(w.data.astype(int)).max() == 127 and w.quant.axis == 0
    s_in, zp_in = scale_zero_point(-2.0, 2.0)
    assert x.quant.scalar() == (pytest.approx(s_in), zp_in)
    np.testing.assert_allclose(b.quant.scale, np.float32(s_in) * w.quant.scale, rtol=1e-6)
    # the multiplier of channel 0 encodes s_in * s_w / s_out as M * 2^(shift - 31), M in [2^30, 2^31)
    real = float(np.float32(s_in)) * float(w.quant.scale[0]) / float(q.t(node.outputs[0]).quant.scale[0])
    m, shift = int(node.attrs["multiplier"][0]), int(node.attrs["shift"][0])
    assert 2**30 <= m < 2**31 and math.isclose(m * 2.0 ** (shift - 31), real, rel_tol=2**-30)
    assert g.nodes[0].attrs.get("multiplier") is None            # the float graph is untouched


def test_per_tensor_linear_when_the_target_asks(linear_graph):
    q = quantize(linear_graph, _ranges(linear_graph), {"linear_per_channel": False})
    w = q.t(q.nodes[0].inputs[1])
    assert w.quant.axis is None and w.quant.scale.size == 1


def test_int16_activations_are_symmetric_over_the_observed_range(linear_graph):
    g = linear_graph.copy()
    out = g.nodes[0].outputs[0]
    g.t(out).int_type = "int16"
    r = _ranges(g, -1.0, 1.0)
    r.observed = {n: (-3.0, 2.0) for n in r}
    q = quantize(g, r)
    assert q.t(out).dtype == "int16" and q.t(out).quant.scalar() == (pytest.approx(3.0 / 32767), 0)
    assert q.t(q.inputs[0]).dtype == "int8"                          # only the promoted tensor


def test_shared_weights_are_stored_once_and_biases_quantized_per_use():
    """A module called twice: its per-channel int8 weights are the same integers at both uses
    (one tensor, stored once); each use's bias has its own scale (input scale x weight scale)."""
    torch.manual_seed(0)
    lin = nn.Linear(3, 3)
    g = float_graph(Fn(lambda s, x: s.l(torch.relu(s.l(x)) * 4.0), l=lin).eval(), [(3,)])
    r = _ranges(g)
    second_in = [n for n in g.nodes if n.op == "linear"][1].inputs[0]
    r[second_in] = (-8.0, 8.0)                     # the two uses see different input scales
    q = quantize(g, r)
    layers = [n for n in q.nodes if n.op == "linear"]
    assert len(layers) == 2 and layers[0].inputs[1] == layers[1].inputs[1]
    b0, b1 = (q.t(n.inputs[2]) for n in layers)
    assert b0.name != b1.name and not np.allclose(b0.quant.scale, b1.quant.scale)


def test_a_float_only_op_is_refused(linear_graph):
    g = linear_graph.copy()
    g.nodes[0].op = "batch_norm"
    with pytest.raises(UnsupportedOpError, match="no integer kernel"):
        quantize(g, _ranges(g))
