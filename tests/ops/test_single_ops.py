"""Per-op numeric tests: each op alone, float against torch, int8 against quantize(float).

For ops with weights the float reference uses the *quantized* weights and bias (dequantized),
so the only rounding left is the output's: the int8 result must be within 1 LSB of it."""
import numpy as np
import pytest
import torch

from edgeq import interpreter
from edgeq.passes import to_nhwc
from edgeq.pipeline import float_graph, quantized_graph
from tests.helpers import assert_each_layer_within_one_lsb, data
from tests.op_cases import CASES, INT16_CASES


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_float_matches_torch_and_int_within_one_lsb(case):
    model, shape = CASES[case]
    model.eval()
    x = data(shape)
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
    assert q.dtype == (np.int32 if qgraph.t(qgraph.outputs[0]).quant is None else np.int8)   # argmax: int32
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


@pytest.mark.parametrize("case", INT16_CASES)
def test_op_16x8_within_one_lsb_and_layout_independent(case):
    """Every layer that can run with int16 activations does (precision 16x8): each stays within
    1 int16 LSB of its float op on dequantized inputs, and NHWC computes the same integers."""
    from edgeq.mixed_precision import PrecisionRequest
    model, shape = CASES[case]
    model.eval()
    x = data(shape)
    fgraph = float_graph(model, [shape])
    qgraph = quantized_graph(fgraph, [x], method="minmax", precision=PrecisionRequest("16x8"))
    wide = [n for n in qgraph.nodes if qgraph.t(n.outputs[0]).dtype == "int16"]
    assert wide, "nothing was promoted"
    for n in wide:
        assert all(qgraph.t(i).dtype in ("int16", "int8", "int64") for i in n.inputs)
        assert qgraph.t(n.outputs[0]).quant.zero_point[0] == 0
        if n.op in ("conv2d", "linear"):
            assert qgraph.t(n.inputs[0]).dtype == "int16" and qgraph.t(n.inputs[2]).dtype == "int64"
    assert_each_layer_within_one_lsb(fgraph, qgraph, x)
    xin = interpreter.quantize_input(qgraph, 0, x)
    q = interpreter.run(qgraph, [xin])[qgraph.outputs[0]]
    nhwc = to_nhwc(qgraph)
    q2 = interpreter.run(nhwc, [xin.transpose(0, 2, 3, 1) if xin.ndim == 4 else xin])[nhwc.outputs[0]]
    np.testing.assert_array_equal(q2.transpose(0, 3, 1, 2) if q2.ndim == 4 else q2, q)
