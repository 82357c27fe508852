"""edgeq.build of a QAT module: byte-identical artifacts before training, the module's own
outputs checked against the reference in the report, trained weights in the artifacts."""
import numpy as np
import pytest
import torch

import edgeq
from edgeq.errors import EdgeqError, EdgeqNote
from tests.helpers import data
from tests.op_cases import CASES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _artifacts(report):
    return {a["path"]: (report.out_dir / a["path"]).read_bytes() for a in report["artifacts"]}


@pytest.mark.parametrize("name,target,options", [
    ("add_relu", "onnx", {}),
    ("conv1d_bn_relu_pool_stack", "tflite", {}),
    ("vector_norm_sqrt", "onnx", {}),                    # a layer called twice, bias-corrected
    ("conv_transpose_bn_relu6", "host-c", {}),
    ("conv_pools_16x8", "tflite", {"precision": "16x8"}),
])
def test_untrained_module_builds_the_models_artifacts(tmp_path, name, target, options):
    model, shape = CASES[name]
    x = data(shape, 32)
    direct = edgeq.build(model, x, target, tmp_path / "direct", **options)
    qm = edgeq.qat.prepare(model, x, target, **options)
    via_qat = edgeq.build(qm, x, target, tmp_path / "qat", **options)
    assert _artifacts(via_qat) == _artifacts(direct)
    assert via_qat["qat"]["exact_fraction"] == 1.0 and via_qat["qat"]["samples"] == 32


def test_trained_module_builds_its_own_integers(tmp_path):
    model, shape = CASES["flatten_linear"]
    x = data(shape, 64)
    labels = np.arange(64) % 5
    qm = edgeq.qat.prepare(model, x, "tflite")
    opt = torch.optim.Adam(qm.parameters(), lr=0.02)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(qm(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
        opt.step()
    with torch.no_grad():
        qat_accuracy = float((qm(torch.from_numpy(x)).argmax(1).numpy() == labels).mean())
    rep = edgeq.build(qm, x, "tflite", tmp_path / "trained", eval_labels=labels)
    direct = edgeq.build(model, x, "tflite", tmp_path / "direct")
    assert _artifacts(rep) != _artifacts(direct)
    assert rep["qat"]["exact_fraction"] == 1.0
    for v in rep["validation"]:        # every runtime computes what the module computed
        assert v["accuracy"] == qat_accuracy, v
    assert rep["accuracy"]["float"] is not None


def test_module_refuses_other_quantizer_settings(tmp_path):
    model, shape = CASES["linear_relu"]
    x = data(shape, 16)
    qm = edgeq.qat.prepare(model, x, "onnx")
    qm.options["linear_per_channel"] = False      # as if prepared for a per-tensor target
    with pytest.raises(EdgeqError, match="prepared with quantizer settings linear_per_channel=False"):
        edgeq.build(qm, x, "onnx", tmp_path / "out")


def test_quantization_options_given_to_the_build_of_a_module_are_noted(tmp_path):
    model, shape = CASES["linear_relu"]
    x = data(shape, 16)
    qm = edgeq.qat.prepare(model, x, "onnx")
    with pytest.warns(EdgeqNote, match="--method: ignored, a QAT module carries its quantization"):
        rep = edgeq.build(qm, x, "onnx", tmp_path / "out", method="minmax")
    assert rep["qat"]["exact_fraction"] == 1.0
