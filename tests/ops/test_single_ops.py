"""Per-op numeric tests: each op alone, float against torch, int8 against quantize(float).

For ops with weights the float reference uses the *quantized* weights and bias (dequantized),
so the only rounding left is the output's: the int8 result must be within 1 LSB of it."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.passes import to_nhwc
from edgeq.pipeline import float_graph, quantized_graph
from edgeq.sensitivity import dequantized_copy


class Fn(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def conv(**kw):
    torch.manual_seed(0)
    return Fn(lambda s, x: s.c(x), c=nn.Conv2d(**kw))


CASES = {
    "conv3x3": (conv(in_channels=3, out_channels=8, kernel_size=3, padding=1), (3, 9, 9)),
    "conv_stride_dilation": (conv(in_channels=4, out_channels=6, kernel_size=3, stride=2, dilation=2, padding=2), (4, 11, 10)),
    "conv_asym_kernel": (conv(in_channels=1, out_channels=5, kernel_size=(5, 3), stride=(2, 1), padding=(2, 1)), (1, 12, 7)),
    "depthwise": (conv(in_channels=6, out_channels=6, kernel_size=3, padding=1, groups=6), (6, 8, 8)),
    "depthwise_multiplier2": (conv(in_channels=4, out_channels=8, kernel_size=3, padding=1, groups=4), (4, 7, 7)),
    "grouped": (conv(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=2), (8, 6, 6)),
    "conv_relu6": (Fn(lambda s, x: torch.nn.functional.relu6(s.c(x)), c=nn.Conv2d(3, 4, 3)), (3, 6, 6)),
    "linear_relu": (Fn(lambda s, x: torch.relu(s.l(x)), l=nn.Linear(20, 7)), (20,)),
    "max_pool": (Fn(lambda s, x: torch.nn.functional.max_pool2d(x, 3, 2, 1)), (3, 9, 9)),
    "max_pool_ceil": (Fn(lambda s, x: torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)), (2, 7, 7)),
    "avg_pool": (Fn(lambda s, x: torch.nn.functional.avg_pool2d(x, 2)), (3, 8, 8)),
    "global_avg": (Fn(lambda s, x: x.mean((2, 3))), (5, 6, 6)),
    "add_relu": (Fn(lambda s, x: torch.relu(s.a(x) + s.b(x)), a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 3, padding=1)), (3, 5, 5)),
    "hardtanh": (Fn(lambda s, x: torch.nn.functional.hardtanh(x, -0.5, 0.7)), (10,)),
    "flatten_linear": (Fn(lambda s, x: s.l(torch.flatten(x, 1)), l=nn.Linear(48, 5)), (3, 4, 4)),
    "permute_flatten": (Fn(lambda s, x: torch.flatten(x.permute(0, 2, 3, 1), 1)), (3, 2, 4)),
    "softmax": (Fn(lambda s, x: torch.softmax(x, dim=1)), (12,)),
    "softmax_channels_4d": (Fn(lambda s, x: torch.softmax(x, dim=1)), (5, 3, 2)),
}


def _data(shape, n=48, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


def assert_each_layer_within_one_lsb(fgraph, qgraph, x):
    """Every node's int8 output is within 1 LSB of quantize(float op(dequantized int inputs,
    dequantized int weights)): the op's own rounding is the only error allowed."""
    fq = dequantized_copy(qgraph)
    qvals = interpreter.run(qgraph, [interpreter.quantize_input(qgraph, 0, x)], keep=True)
    for node in qgraph.nodes:
        fnode = next(n for n in fq.nodes if n.name == node.name)
        args = [interpreter.dequantize(qgraph, n, qvals[n]) if n in qvals else fq.t(n).data for n in node.inputs]
        from edgeq.ops import get_op
        ref = get_op(fnode.op).run_float(fnode, fq, args)[0]
        scale, zp = qgraph.t(node.outputs[0]).quant.scalar()
        expect = np.clip(np.round(ref.astype(np.float64) / np.float32(scale)) + zp, -128, 127)
        diff = np.abs(qvals[node.outputs[0]].astype(np.int64) - expect)
        assert diff.max() <= 1, f"{node.name} ({node.op}) is {diff.max()} LSB from its float reference"


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_float_matches_torch_and_int_within_one_lsb(case):
    model, shape = CASES[case]
    model.eval()
    x = _data(shape)
    fgraph = float_graph(model, [shape])
    with torch.no_grad():
        expect = model(torch.from_numpy(x)).numpy()
    got = interpreter.run(fgraph, [x])[fgraph.outputs[0]]
    np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-4)

    qgraph = quantized_graph(fgraph, [x], method="minmax")
    assert_each_layer_within_one_lsb(fgraph, qgraph, x)

    # the NHWC form of the same quantized graph computes the same integers
    xin = interpreter.quantize_input(qgraph, 0, x)
    q = interpreter.run(qgraph, [xin])[qgraph.outputs[0]]
    assert q.dtype == np.int8
    nhwc = to_nhwc(qgraph)
    q2 = interpreter.run(nhwc, [xin.transpose(0, 2, 3, 1) if xin.ndim == 4 else xin])[nhwc.outputs[0]]
    np.testing.assert_array_equal(q2.transpose(0, 3, 1, 2) if q2.ndim == 4 else q2, q)


def test_integer_reference_has_no_float_intermediates():
    from examples.models import MODELS, synthetic_data
    factory, shape = MODELS["mobilenet_v2_blocks"]
    x = synthetic_data("mobilenet_v2_blocks", 16, 0)
    qgraph = quantized_graph(float_graph(factory(), [shape]), [x])
    seen = []
    interpreter.run(qgraph, [interpreter.quantize_input(qgraph, 0, x)], on_tensor=lambda n, v: seen.append(v.dtype))
    assert seen and all(np.issubdtype(d, np.integer) for d in seen)
    for t in qgraph.tensors.values():
        assert t.dtype in ("int8", "int32"), (t.name, t.dtype)
