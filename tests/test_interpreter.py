"""edgeq.interpreter: running float and quantized graphs, the input boundary, batching."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.errors import EdgeqError
from edgeq.pipeline import float_graph, quantized_graph
from tests.helpers import Fn, data


@pytest.fixture(scope="module")
def graphs():
    torch.manual_seed(0)
    model = Fn(lambda s, x: torch.relu(s.l2(torch.relu(s.l1(x)))), l1=nn.Linear(6, 5), l2=nn.Linear(5, 3)).eval()
    x = data((6,), n=40)
    f = float_graph(model, [(6,)])
    return model, f, quantized_graph(f, [x], method="minmax"), x


def test_float_graph_matches_torch_and_keeps_what_is_asked(graphs):
    model, f, _, x = graphs
    out = interpreter.run(f, [x])
    assert list(out) == f.outputs
    with torch.no_grad():
        np.testing.assert_allclose(out[f.outputs[0]], model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
    every = interpreter.run(f, [x], keep=True)
    assert set(f.activations()) <= set(every)
    middle = f.nodes[0].outputs[0]
    assert set(interpreter.run(f, [x], keep={middle})) == {middle, *f.outputs}
    seen = []
    interpreter.run(f, [x], on_tensor=lambda name, v: seen.append(name))
    assert seen == f.activations()


def test_input_types_and_counts_are_checked(graphs):
    _, f, q, x = graphs
    with pytest.raises(EdgeqError, match="inputs"):
        interpreter.run(f, [x, x])
    with pytest.raises(EdgeqError, match="must be int"):
        interpreter.run(q, [x])
    with pytest.raises(EdgeqError, match="must be float"):
        interpreter.run(f, [x.astype(np.int8)])


def test_input_boundary_rounding_modes(graphs):
    _, _, q, _ = graphs
    scale, zp = q.t(q.inputs[0]).quant.scalar()
    ties = (np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 3.0]], np.float32) * np.float32(scale)).astype(np.float32)
    even = interpreter.quantize_input(q, 0, ties, "half_even").astype(int) - zp
    away = interpreter.quantize_input(q, 0, ties, "half_away").astype(int) - zp
    assert even.tolist() == [[0, 2, 2, 0, -2, 3]]
    assert away.tolist() == [[1, 2, 3, -1, -2, 3]]


def test_batched_run_equals_one_run(graphs):
    _, _, q, x = graphs
    qin = [interpreter.quantize_input(q, 0, x)]
    whole = interpreter.run(q, qin)[q.outputs[0]]
    done = []
    parts = list(interpreter.run_batched(q, qin, batch_size=7, progress=done.append))
    np.testing.assert_array_equal(np.concatenate([p[q.outputs[0]] for p in parts]), whole)
    assert sum(done) == x.shape[0] and len(parts) == 6


def test_dequantize_is_scale_times_offset(graphs):
    _, _, q, x = graphs
    name = q.outputs[0]
    scale, zp = q.t(name).quant.scalar()
    ints = np.array([[zp, zp + 10, 127]], dtype=np.int8)
    np.testing.assert_allclose(interpreter.dequantize(q, name, ints), (ints.astype(np.float64) - zp) * scale, rtol=1e-6)


def test_chunked_integer_run_equals_one_run_for_every_tensor(graphs):
    _, _, q, x = graphs
    qin = [interpreter.quantize_input(q, 0, x)]
    whole = interpreter.run(q, qin, keep=True)
    chunked = interpreter.run_int_chunked(q, qin, keep=True, rows=7)
    assert set(chunked) == set(whole)
    for k in whole:
        np.testing.assert_array_equal(chunked[k], whole[k])
