"""``gelu_tanh_form``: GELU from ops with 16x8 kernels (for a pass that needs GELU in int16,
where the int8 table does not apply). Its float graph is torch's tanh GELU; in 16x8 every node
but the int8 input's QUANTIZE is int16, it stays within the tanh approximation of erf-GELU,
and the TFLite artifact is bit-exact."""
import math

import numpy as np
import torch
from torch import nn

from edgeq import interpreter, metrics
from edgeq.calibration import calibrate
from edgeq.ops import get_op
from edgeq.ops.activations import gelu_tanh_form
from edgeq.passes.precision import int16_capable, promote
from edgeq.pipeline import float_graph
from edgeq.quantize import quantize
from edgeq.targets import load_profile, target_module
from tests.helpers import Fn

ERF = np.vectorize(math.erf)


def _decomposed():
    torch.manual_seed(0)
    model = Fn(lambda s, x: nn.functional.gelu(s.l(x)), l=nn.Linear(16, 48)).eval()
    g = float_graph(model, [(16,)])
    node = next(n for n in g.nodes if n.op == "gelu")
    at = g.nodes.index(node)
    g.nodes[at:at + 1] = gelu_tanh_form(g, node)
    for n in g.nodes:
        get_op(n.op).check_attrs(n)
    return model, g


def test_float_is_torch_tanh_gelu():
    model, g = _decomposed()
    x = np.random.default_rng(0).normal(0, 2, (64, 16)).astype(np.float32)
    with torch.no_grad():
        h = model.l(torch.from_numpy(x))
        tanh_gelu = nn.functional.gelu(h, approximate="tanh").numpy()
        erf_gelu = nn.functional.gelu(h).numpy()
    got = interpreter.run(g, [x])[g.outputs[0]]
    np.testing.assert_allclose(got, tanh_gelu, atol=2e-6)
    assert np.abs(got - erf_gelu).max() < 5e-4
    assert "gelu" not in {n.op for n in g.nodes}


def test_16x8_within_the_approximation_and_bit_exact_on_tflite(tmp_path):
    _, g = _decomposed()
    rng = np.random.default_rng(1)
    cal, ev = (rng.normal(0, 1, (128, 16)).astype(np.float32) for _ in range(2))
    q = quantize(promote(g, [n.outputs[0] for n in g.nodes if int16_capable(g, n.outputs[0])]),
                 calibrate(g, [cal], method="minmax"))
    assert all(q.t(n.outputs[0]).dtype == "int16" for n in q.nodes)
    x = interpreter.quantize_input(q, 0, ev)
    lin = next(n for n in q.nodes if n.op == "linear").outputs[0]
    vals = interpreter.run(q, [x], keep={lin})
    h = interpreter.dequantize(q, lin, vals[lin]).astype(np.float64)
    y = interpreter.dequantize(q, q.outputs[0], vals[q.outputs[0]]).astype(np.float64)
    assert np.abs(y - 0.5 * h * (1 + ERF(h / math.sqrt(2)))).max() < 1e-3
    profile = load_profile("tflite")
    t = target_module(profile)
    graph = t.prepare(q, profile, {})
    arts = t.emit(graph, tmp_path, profile, {})
    xi = interpreter.quantize_input(graph, 0, ev[:16], t.input_rounding)
    ref = [interpreter.run(graph, [xi])[o] for o in graph.outputs]
    for run in t.run(graph, arts, profile, [xi], [ev[:16]], {})[:2]:
        assert metrics.compare(ref, run.outputs)["exact_fraction"] == 1.0, run.runtime
