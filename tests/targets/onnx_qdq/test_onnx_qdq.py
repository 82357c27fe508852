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
