"""edgeq.frontend: torch.export -> IR. Ops, attributes (the op schemas), module paths,
constant folding at trace time, and the errors a user sees."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq.errors import EdgeqError, UnsupportedOpError
from edgeq.frontend import trace
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
