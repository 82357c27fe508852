"""merge_data_movement collapses reshape / transpose chains and keeps the function."""
import numpy as np
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.frontend import trace
from edgeq.ir import Graph, Node, Tensor
from edgeq.passes import merge_data_movement, nhwc_graph, to_nhwc
from edgeq.pipeline import float_graph


class HeadSplit(nn.Module):
    """Attention's head split and merge: view / transpose / unsqueeze / squeeze round trips."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = x.view(b, n, 4, d // 4).transpose(1, 2)          # (b, 4, n, d/4)
        h = h.unsqueeze(1).squeeze(1).transpose(2, 3).transpose(2, 3)
        scores = h @ h.transpose(-1, -2)
        y = (scores.softmax(-1) @ h).transpose(1, 2).reshape(b, n, d)
        return y.unsqueeze(-1).squeeze(-1)


class ConvTokens(nn.Module):
    """A conv map turned into tokens and back (NHWC round trips in the layout pass)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.mix = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)                                     # (b, 8, 4, 4)
        t = y.flatten(2).transpose(1, 2)                     # (b, 16, 8)
        t = self.mix(t)
        return t.transpose(1, 2).reshape(y.shape).permute(0, 2, 3, 1).permute(0, 3, 1, 2)


def _data_movement(g: Graph) -> int:
    return sum(n.op in ("reshape", "transpose") for n in g.nodes)


def _torch(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_attention_head_split_keeps_function_with_fewer_copies() -> None:
    x = np.random.default_rng(0).normal(size=(3, 6, 16)).astype(np.float32)
    model = HeadSplit().eval()
    g = trace(model, [(6, 16)])
    merged = merge_data_movement(g)
    assert _data_movement(merged) < _data_movement(g)
    got = interpreter.run(merged, [x])[merged.outputs[0]]
    np.testing.assert_allclose(got, _torch(model, x), rtol=1e-5, atol=1e-6)


def test_nhwc_round_trips_cancel() -> None:
    x = np.random.default_rng(1).normal(size=(2, 3, 4, 4)).astype(np.float32)
    model = ConvTokens().eval()
    g = float_graph(model, [(3, 4, 4)])
    plain, merged = to_nhwc(g), nhwc_graph(g)
    assert _data_movement(merged) < _data_movement(plain)
    want = _torch(model, x).transpose(0, 2, 3, 1)           # the NHWC graph's output layout
    got = interpreter.run(merged, [np.ascontiguousarray(x.transpose(0, 2, 3, 1))])[merged.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _chain(ops: list[tuple[str, dict, tuple[int, ...]]]) -> Graph:
    g = Graph(inputs=["x"], layout="nhwc")
    g.add_tensor(Tensor("x", (1, 2, 1, 3)))
    prev = "x"
    for i, (op, attrs, shape) in enumerate(ops):
        g.add_tensor(Tensor(f"t{i}", shape))
        g.nodes.append(Node(op, [prev], [f"t{i}"], attrs, f"n{i}"))
        prev = f"t{i}"
    g.outputs = [prev]
    return g


def test_hand_made_chains() -> None:
    """Hand-computed outcomes: inverse transposes vanish, a unit-dimension move is a reshape,
    reshape chains keep the last shape."""
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 1, 3)
    inverse = _chain([("transpose", {"perm": [0, 3, 1, 2]}, (1, 3, 2, 1)),
                      ("transpose", {"perm": [0, 2, 3, 1]}, (1, 2, 1, 3)),
                      ("reshape", {"shape": [6]}, (1, 6))])
    m = merge_data_movement(inverse)
    assert [n.op for n in m.nodes] == ["reshape"] and m.nodes[0].inputs == ["x"]
    np.testing.assert_array_equal(interpreter.run(m, [x])[m.outputs[0]], x.reshape(1, 6))
    unit_move = _chain([("transpose", {"perm": [0, 2, 1, 3]}, (1, 1, 2, 3))])
    m = merge_data_movement(unit_move)
    assert [(n.op, n.attrs) for n in m.nodes] == [("reshape", {"shape": [1, 2, 3]})]
    real_move = _chain([("transpose", {"perm": [0, 3, 2, 1]}, (1, 3, 1, 2))])
    m = merge_data_movement(real_move)
    assert [(n.op, n.attrs) for n in m.nodes] == [("transpose", {"perm": [0, 3, 2, 1]})]
    np.testing.assert_array_equal(interpreter.run(m, [x])[m.outputs[0]], x.transpose(0, 3, 2, 1))
