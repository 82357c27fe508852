"""The ONNX QDQ target: each op's lowering run in onnxruntime against the integer reference."""
import numpy as np
import pytest

from edgeq import interpreter
from edgeq.pipeline import float_graph, quantized_graph
from tests.helpers import data
from tests.op_cases import CASES


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_onnx_qdq_within_one_lsb_of_reference(case, tmp_path):
    """The ONNX QDQ lowering of each op model, run in onnxruntime, agrees with the integer
    reference up to ORT's float requantization: almost every value within 1 LSB (a 1 LSB
    difference in one layer can grow in the next, e.g. through a multiply)."""
    from edgeq.targets import load_profile, target_module
    model, shape = CASES[case]
    profile = load_profile("onnx")
    t = target_module(profile)
    x = data(shape, n=16)
    qgraph = quantized_graph(float_graph(model.eval(), [shape]), [x], method="minmax", options=profile.quantizer)
    graph = t.prepare(qgraph, profile, {})
    artifacts = t.emit(graph, tmp_path, profile, {})
    ref = interpreter.run(graph, [interpreter.quantize_input(graph, 0, x, t.input_rounding)])
    for run in t.run(graph, artifacts, profile, [], [x], {}):
        for name, got in zip(graph.outputs, run.outputs):
            diff = np.abs(got.astype(np.int64) - ref[name].astype(np.int64))
            assert (diff <= 1).mean() >= 0.97 and diff.max() <= 12, \
                f"{run.runtime}: {(diff <= 1).mean():.3f} within 1 LSB, max {diff.max()} LSB"


def test_concat_of_a_class_token_is_expanded_to_the_batch(tmp_path):
    """A constant part of a concat (a transformer's class token, batch 1) is repeated over the
    batch by the IR; the ONNX model expands it (ORT's Concat needs equal batch sizes)."""
    import torch
    from torch import nn

    from edgeq.targets import load_profile, target_module
    from tests.helpers import Fn
    torch.manual_seed(0)
    model = Fn(lambda s, x: torch.cat([s.cls.expand(x.shape[0], -1, -1), s.l(x)], 1),
               cls=nn.Parameter(torch.randn(1, 1, 6)), l=nn.Linear(4, 6)).eval()
    profile = load_profile("onnx")
    t = target_module(profile)
    x = data((5, 4), n=16)
    qgraph = quantized_graph(float_graph(model, [(5, 4)]), [x], method="minmax", options=profile.quantizer)
    assert any(n.op == "concat" and any(qgraph.t(i).is_constant for i in n.inputs) for n in qgraph.nodes)
    graph = t.prepare(qgraph, profile, {})
    arts = t.emit(graph, tmp_path, profile, {})
    ref = interpreter.run(graph, [interpreter.quantize_input(graph, 0, x, t.input_rounding)])[graph.outputs[0]]
    for run in t.run(graph, arts, profile, [], [x], {}):
        assert run.outputs[0].shape == ref.shape == (16, 6, 6)
        assert np.abs(run.outputs[0].astype(np.int64) - ref).max() <= 1
