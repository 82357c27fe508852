"""Each pass does its one job and keeps the float function."""
import numpy as np
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.frontend import trace
from edgeq.passes import fold_batch_norm, fuse_activations, lower_global_pool, remove_identities, to_nhwc
from edgeq.pipeline import float_graph


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.bn.running_mean.uniform_(-1, 1)
        self.bn.running_var.uniform_(0.5, 2)
        self.bn.weight.data.uniform_(0.5, 1.5)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        y = torch.relu(self.drop(self.bn(self.conv(x))))
        y = nn.functional.max_pool2d(y, 2)
        return self.fc(torch.flatten(y, 1)), y.mean((2, 3))


X = np.random.default_rng(0).normal(size=(8, 3, 8, 8)).astype(np.float32)


def _outputs(g):
    r = interpreter.run(g, [X])
    return [r[o] for o in g.outputs]


def test_passes_preserve_function_and_do_their_job():
    model = ConvBnRelu().eval()
    g0 = trace(model, [(3, 8, 8)])
    with torch.no_grad():
        expect = [t.numpy() for t in model(torch.from_numpy(X))]
    ops0 = [n.op for n in g0.nodes]
    assert "batch_norm" in ops0 and "identity" in ops0
    g1 = remove_identities(g0)
    assert "identity" not in [n.op for n in g1.nodes]
    g2 = fold_batch_norm(g1)
    assert "batch_norm" not in [n.op for n in g2.nodes]
    g3 = lower_global_pool(g2)
    assert "mean" not in [n.op for n in g3.nodes]
    g4 = fuse_activations(g3)
    assert "clamp" not in [n.op for n in g4.nodes]
    assert next(n for n in g4.nodes if n.op == "conv2d").attrs["activation"] == {"min": 0.0, "max": None}
    for g in (g0, g1, g2, g3, g4):
        for got, want in zip(_outputs(g), expect):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_to_nhwc_keeps_flattened_order_by_permuting_linear_weights():
    g = float_graph(ConvBnRelu().eval(), [(3, 8, 8)])
    n = to_nhwc(g)
    assert n.layout == "nhwc" and n.t(n.inputs[0]).shape == (1, 8, 8, 3)
    assert "transpose" not in [x.op for x in n.nodes]   # folded into the linear layer's columns
    conv = next(x for x in n.nodes if x.op == "conv2d")
    assert n.t(conv.inputs[1]).shape == (6, 3, 3, 3)  # OHWI
    got = interpreter.run(n, [X.transpose(0, 2, 3, 1).copy()])
    want = _outputs(g)
    for o, w in zip(n.outputs, want):
        np.testing.assert_allclose(got[o], w, rtol=1e-4, atol=1e-5)


def test_to_nhwc_depthwise_weights_are_1hwo():
    m = nn.Sequential(nn.Conv2d(4, 8, 3, groups=4), nn.ReLU()).eval()
    n = to_nhwc(float_graph(m, [(4, 6, 6)]))
    dw = next(x for x in n.nodes if x.op == "depthwise_conv2d")
    assert n.t(dw.inputs[1]).shape == (1, 3, 3, 8) and dw.attrs["depth_multiplier"] == 2
    x = np.random.default_rng(1).normal(size=(3, 4, 6, 6)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(interpreter.run(n, [x.transpose(0, 2, 3, 1).copy()])[n.outputs[0]], want,
                               rtol=1e-4, atol=1e-5)


def test_to_nhwc_inserts_transpose_when_flatten_feeds_no_linear():
    m = nn.Sequential(nn.Conv2d(2, 3, 1), nn.Flatten()).eval()
    g = float_graph(m, [(2, 2, 2)])
    n = to_nhwc(g)
    assert "transpose" in [x.op for x in n.nodes]
    x = np.random.default_rng(2).normal(size=(2, 2, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(interpreter.run(n, [x.transpose(0, 2, 3, 1).copy()])[n.outputs[0]],
                               interpreter.run(g, [x])[g.outputs[0]], rtol=1e-5, atol=1e-6)


def test_nchw_input_layout_adds_transpose_inside():
    g = float_graph(ConvBnRelu().eval(), [(3, 8, 8)])
    n = to_nhwc(g, input_layout="nchw")
    assert n.t(n.inputs[0]).shape == (1, 3, 8, 8) and n.nodes[0].op == "transpose"
    np.testing.assert_allclose(interpreter.run(n, [X])[n.outputs[0]], _outputs(g)[0], rtol=1e-4, atol=1e-5)
