"""edgeq.frontend: torch.export -> IR. Ops, attributes (the op schemas), module paths,
constant folding at trace time, and the errors a user sees."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import edgeq.frontend.tracer as tracer
from edgeq import interpreter
from edgeq.errors import EdgeqError, UnsupportedOpError
from edgeq.frontend import trace
from edgeq.passes import prepare_float_graph
from edgeq.ops import REGISTRY
from edgeq.ops.base import Padding
from tests.helpers import Fn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        return self.up(torch.relu(self.conv(x)))


def test_ops_attributes_and_module_paths():
    g = trace(Block().eval(), [(3, 8, 8)])
    ops = [n.op for n in g.nodes]
    assert ops == ["conv2d", "clamp", "conv_transpose2d"]
    conv, _, up = g.nodes
    assert conv.attrs["stride"] == (2, 2) and conv.attrs["padding"] == Padding(1, 1, 1, 1)
    assert conv.attrs["dilation"] == (1, 1) and conv.attrs["groups"] == 1
    assert up.attrs["padding"] == Padding(1, 1, 1, 1) and up.attrs["output_padding"] == (1, 1)
    assert conv.module_path == "conv" and up.module_path == "up"
    assert g.t(g.outputs[0]).shape == (1, 2, 8, 8)
    assert g.t(conv.inputs[1]).is_constant and g.t(conv.inputs[1]).shape == (4, 3, 3, 3)


def test_every_traced_node_follows_its_op_schema():
    g = trace(Block().eval(), [(3, 8, 8)])
    for node in g.nodes:
        schema = {a.name for a in REGISTRY[node.op].attributes}
        assert set(node.attrs) <= schema, (node.op, node.attrs)


def test_constant_subgraphs_are_folded_at_trace_time():
    w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    model = Fn(lambda s, x: x @ (s.w.t() * 2.0 + 1.0).t(), w=nn.Parameter(w)).eval()
    g = trace(model, [(3,)])
    assert [n.op for n in g.nodes] == ["linear"]
    np.testing.assert_array_equal(g.t(g.nodes[0].inputs[1]).data, (w.numpy() * 2 + 1).T)


def test_unsupported_op_names_the_op_and_module():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Fn(lambda s, x: torch.cumsum(x, 1))

        def forward(self, x):
            return self.inner(x)

    with pytest.raises(UnsupportedOpError, match=r"cumsum.*inner"):
        trace(Odd().eval(), [(5,)])


def test_batch_dimension_rules():
    with pytest.raises(UnsupportedOpError, match="batch dimension"):
        trace(Fn(lambda s, x: torch.cat([x, x], 0)).eval(), [(4,)])
    with pytest.raises(EdgeqError, match="input shapes"):
        trace(Fn(lambda s, x: x + 1).eval())


def _float_matches_torch(model: nn.Module, *inputs: torch.Tensor):  # noqa: ANN201 - the traced Graph
    from edgeq import interpreter
    g = trace(model.eval(), [tuple(x.shape[1:]) for x in inputs])
    batch = [torch.cat([x, x * 0.5 + 0.1, -x]) for x in inputs]      # three samples
    with torch.no_grad():
        ref = model(*batch)
    ref = ref if isinstance(ref, tuple) else (ref,)
    out = interpreter.run(g, [x.numpy() for x in batch])
    for name, r in zip(g.outputs, ref):
        np.testing.assert_allclose(out[name], r.numpy(), rtol=1e-5, atol=1e-5)
    return g


def test_constant_split_keeps_every_piece():
    """Regression: a split of a constant was dropped at constant folding (piece 1 gave a
    misleading max-pool error, piece 0 a KeyError)."""
    w = torch.arange(12.0).reshape(6, 2)
    for piece in (0, 1, 2):
        model = Fn(lambda s, x, k=piece: x * torch.split(s.w, 2)[k].sum(), w=nn.Parameter(w))
        g = _float_matches_torch(model, torch.ones(1, 3))
        assert [n.op for n in g.nodes] == ["mul"]


def test_batch_dimension_squeezed_and_moved_at_batch_1():
    """Linear on a 3-D input views (1, T, C) as (T, C); batch_first RNN code permutes the batch
    away from dimension 0. Both are per-sample computations and trace to the same IR."""
    lin = nn.Linear(4, 5)
    model = Fn(lambda s, x: s.l(x.permute(1, 0, 2)).permute(1, 0, 2).flatten(1), l=lin)
    g = _float_matches_torch(model, torch.randn(1, 6, 4))
    assert {n.op for n in g.nodes} <= {"linear", "reshape"}
    assert g.t(g.outputs[0]).shape == (1, 30)


@pytest.mark.parametrize("kind, layers, batch_first", [("gru", 2, True), ("lstm", 3, False), ("lstm", 1, True)])
def test_recurrent_layers_become_one_scan_each(kind, layers, batch_first):
    torch.manual_seed(0)
    rnn = (nn.GRU if kind == "gru" else nn.LSTM)(5, 7, num_layers=layers, batch_first=batch_first)

    def forward(s, x):
        out, state = s.rnn(x if batch_first else x.transpose(0, 1))
        out = out if batch_first else out.transpose(0, 1)
        h = state[0] if kind == "lstm" else state
        return out[:, -1] + h[-1], out.mean(1)

    g = _float_matches_torch(Fn(forward, rnn=rnn), torch.randn(1, 9, 5))
    scans = [n for n in g.nodes if n.op == "scan"]
    assert len(scans) == layers and all(n.attrs["steps"] == 9 for n in scans)
    assert len(g.nodes) < 40                  # not one copy of the cell per time step


def test_recurrent_batch_on_another_axis_than_the_inputs_first_is_named():
    """batch_first=False fed (batch, time, features): the RNN's batch axis (1) holds the time
    steps. One line naming the module and the way out, not a reshape error from inside."""
    rnn = nn.GRU(4, 6)
    with pytest.raises(UnsupportedOpError, match=r"from module 'rnn'.*batch axis \(1, batch_first=False\) has 5 rows"):
        trace(Fn(lambda s, x: s.rnn(x)[0][-1], rnn=rnn), [(5, 4)])


@pytest.mark.parametrize("kind, layers, batch_first", [("gru", 2, True), ("lstm", 2, False), ("lstm", 1, True)])
def test_bidirectional_layers_scan_the_reversed_sequence(kind, layers, batch_first):
    """A backward direction is a scan over the time-reversed sequence; its outputs come back in
    time order, after the forward ones on the feature axis; h_n (c_n) in torch's order."""
    torch.manual_seed(1)
    rnn = (nn.GRU if kind == "gru" else nn.LSTM)(5, 6, num_layers=layers, batch_first=batch_first, bidirectional=True)

    def forward(s, x):
        out, state = s.rnn(x if batch_first else x.transpose(0, 1))
        out = out if batch_first else out.transpose(0, 1)
        states = state if kind == "lstm" else (state,)
        return (out, *[st.transpose(0, 1).flatten(1) for st in states])

    g = _float_matches_torch(Fn(forward, rnn=rnn), torch.randn(1, 8, 5))
    scans = [n for n in g.nodes if n.op == "scan"]
    assert len(scans) == 2 * layers and all(n.attrs["steps"] == 8 for n in scans)
    assert g.t(g.outputs[0]).shape == (1, 8, 12)


@pytest.mark.parametrize("groups, shape", [(1, (8, 5, 6)), (2, (8, 5, 6)), (8, (8, 5, 6)), (1, (6, 20)), (3, (6, 20))])
def test_group_norm_traces_to_the_layer_norm_primitives(groups, shape):
    """One group (Conv-TasNet's global layer norm), some groups, one channel per group; 2-D
    and 1-D feature maps; a random affine."""
    torch.manual_seed(2)
    norm = nn.GroupNorm(groups, shape[0])
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    conv = (nn.Conv2d if len(shape) == 3 else nn.Conv1d)(shape[0], shape[0], 1)
    g = _float_matches_torch(Fn(lambda s, x: s.n(s.c(x)), c=conv, n=norm), torch.randn(1, *shape))
    assert {"mean", "rsqrt", "squared_difference"} <= {n.op for n in g.nodes}


class WholeOps(nn.Module):
    """Ops the post-dispatch trace keeps and a handler takes whole: hardswish, hardsigmoid,
    PReLU, flatten, squeeze."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.prelu = nn.PReLU(6)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        y = self.prelu(nn.functional.hardswish(self.conv(x)))
        y = y * nn.functional.hardsigmoid(y)
        return self.fc(torch.flatten(y, 1)).unsqueeze(-1).squeeze(-1)


def test_one_trace_path_gives_the_two_trace_graph(monkeypatch):
    """``_export_core_aten`` traces once where the ops left are handled whole; the graph and its
    float outputs are those of export + run_decompositions."""
    model = WholeOps().eval()
    traced: list[str] = []
    real_export = torch.export.export
    monkeypatch.setattr(torch.export, "export", lambda *a, **k: traced.append("two") or real_export(*a, **k))
    one = trace(model, [(3, 4, 4)])
    assert traced == []                         # the one-trace path was taken
    monkeypatch.setattr(tracer, "_core_aten_already", lambda ep, table: False)
    two = trace(model, [(3, 4, 4)])
    assert traced == ["two"]
    one, two = prepare_float_graph(one), prepare_float_graph(two)
    assert [(n.op, repr(n.attrs)) for n in one.nodes] == [(n.op, repr(n.attrs)) for n in two.nodes]
    assert "hardswish" in [n.op for n in one.nodes] and "prelu" in [n.op for n in one.nodes]
    for a, b in zip(one.nodes, two.nodes):
        for i, j in zip(a.inputs, b.inputs):
            if one.t(i).is_constant:
                np.testing.assert_array_equal(one.t(i).data, two.t(j).data)
    x = np.random.default_rng(0).standard_normal((4, 3, 4, 4)).astype(np.float32)
    out_one = interpreter.run(one, [x])[one.outputs[0]]
    np.testing.assert_array_equal(out_one, interpreter.run(two, [x])[two.outputs[0]])
    with torch.no_grad():
        np.testing.assert_allclose(out_one, model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-5)
