"""--precision auto: layers promoted one at a time, most sensitive first, stopping as soon as the
target is met; and the user-facing errors and report entries."""
import json
import subprocess
import sys

import numpy as np
import pytest

import edgeq
from edgeq.errors import EdgeqError
from edgeq.mixed_precision import PrecisionRequest, candidates_of, sensitivity_order
from edgeq.pipeline import float_graph, quantize_model, quantized_graph
from examples.models import MODELS, synthetic_data

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dscnn():
    factory, shape = MODELS["ds_cnn"]
    return float_graph(factory(), [shape]), [synthetic_data("ds_cnn", 32, 0)]


FAST = {"equalization": False, "bias_correction": False}   # the search itself is what is tested


def _search(graph, x, target):
    result = quantize_model(graph, x, method="minmax", options=FAST,
                            precision=PrecisionRequest("auto", target_sqnr_db=target))
    return result.graph, result.precision


@pytest.mark.slow
def test_auto_stops_at_the_first_step_that_meets_the_target(dscnn):
    g, x = dscnn
    _, full = _search(g, x, 1e9)              # unreachable: every candidate is tried
    sqnr = [s["output_sqnr_db"] for s in full["steps"]]
    assert len(sqnr) == len(candidates_of(g)) + 1 and not full["target_met"]
    # a target first met at step k (k >= 2): the search must end exactly there
    k = next(i for i in range(2, len(sqnr)) if sqnr[i] > max(sqnr[:i]))
    target = (max(sqnr[:k]) + sqnr[k]) / 2
    q, info = _search(g, x, target)
    assert info["target_met"] and info["chosen_step"] == k and len(info["steps"]) == k + 1
    assert [s["promoted"] for s in info["steps"]] == [s["promoted"] for s in full["steps"][:k + 1]]
    assert info["steps"][-1]["output_sqnr_db"] == pytest.approx(sqnr[k])
    promoted = {s["promoted"] for s in info["steps"][1:]}
    assert promoted <= set(info["int16_layers"])
    assert all(q.t(n.outputs[0]).dtype == "int16" for n in q.nodes if n.name in promoted)


def test_auto_promotes_nothing_when_int8_already_meets_the_target(dscnn):
    g, x = dscnn
    q, info = _search(g, x, 0.0)
    assert info["target_met"] and len(info["steps"]) == 1 and info["int16_layers"] == []
    assert all(t.dtype != "int16" for t in q.tensors.values())
    assert info["arena_bytes"] == info["arena_bytes_int8"]


@pytest.mark.slow
def test_unreachable_target_keeps_the_best_step(dscnn):
    g, x = dscnn
    _, info = _search(g, x, 1e9)
    best = max(s["output_sqnr_db"] for s in info["steps"])
    assert info["steps"][info["chosen_step"]]["output_sqnr_db"] == best


@pytest.mark.slow
def test_order_is_most_sensitive_first(dscnn):
    from edgeq.sensitivity import layer_sensitivity
    g, x = dscnn
    q8 = quantized_graph(g, x, method="minmax", options=FAST)
    order = sensitivity_order(g, q8, x)
    gains = layer_sensitivity(g, q8, x)
    values = [gains[n]["higher_precision_gain_db"] for n in order]
    assert values == sorted(values, reverse=True) and sorted(order) == sorted(candidates_of(g))


def test_requests_without_a_target_or_labels_are_refused():
    with pytest.raises(EdgeqError, match="needs a target"):
        PrecisionRequest("auto").check()
    with pytest.raises(EdgeqError, match="needs labelled eval data"):
        PrecisionRequest("auto", max_accuracy_drop=0.5).check()
    with pytest.raises(EdgeqError, match="unknown precision"):
        PrecisionRequest("int4").check()


def test_int16_layers_by_module_path_and_unknown_names(dscnn):
    g, x = dscnn
    module = next(n.module_path for n in g.nodes if n.op == "conv2d" and n.module_path)
    result = quantize_model(g, x, method="minmax", options=FAST, precision=PrecisionRequest("int8", layers=[module]))
    q = result.graph
    promoted = result.precision["promoted_layers"]
    assert promoted and all(n.module_path == module or n.module_path.startswith(module + ".")
                            for n in q.nodes if n.name in promoted)
    assert set(promoted) <= set(result.precision["int16_layers"])   # + the consumers reading int16
    with pytest.raises(EdgeqError, match="layers that can be int16"):
        quantized_graph(g, x, method="minmax", options=FAST, precision=PrecisionRequest("int8", layers=["no.such.module"]))


def test_build_16x8_onnx_reports_precision_and_stays_close_to_reference(tmp_path):
    factory, shape = MODELS["lenet_digits"]
    x = synthetic_data("lenet_digits", 48, 0)
    rep = edgeq.build(factory(), x, "onnx", tmp_path, precision="16x8")
    p = rep["precision"]
    assert p["mode"] == "16x8" and p["int16_layers"] and p["arena_bytes"] > p["arena_bytes_int8"]
    assert all(o["dtype"] == "int16" for o in rep["outputs"])
    for v in rep["validation"]:                      # ORT requantizes in float: a few int16 LSBs
        assert v["max_abs_diff_lsb"] <= 8 and v["top1_agreement"] == 1.0
    assert "## Mixed precision" in (tmp_path / "report.md").read_text()
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["precision"]["int16_layers"] == p["int16_layers"]


def test_cli_auto_without_target_is_a_clear_error(tmp_path):
    np.save(tmp_path / "cal.npy", synthetic_data("lenet_digits", 8, 0))
    res = subprocess.run([sys.executable, "-m", "edgeq.cli", "build", "examples/models.py:lenet_digits", "--target",
                          "onnx", "--calibration", str(tmp_path / "cal.npy"), "-o", str(tmp_path / "o"),
                          "--precision", "auto", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--target-sqnr" in res.stderr and "--max-accuracy-drop" in res.stderr


@pytest.mark.parametrize("target", ["tflite", "host-c"])
def test_build_16x8_is_bit_exact_where_it_must_be(target, tmp_path):
    factory, shape = MODELS["lenet_digits"]
    x = synthetic_data("lenet_digits", 32, 0)
    rep = edgeq.build(factory(), x, target, tmp_path, precision="16x8")   # raises if not bit-exact
    exact = [v for v in rep["validation"] if v["must_be_exact"]]
    assert exact and all(v["exact_fraction"] == 1.0 for v in exact)
    assert rep["precision"]["int16_layers"] and all(o["dtype"] == "int16" for o in rep["outputs"])


def test_ops_table_marks_16x8_ops_and_hides_internal_requantize():
    from edgeq.cli import ops_table
    from edgeq.targets import list_profiles, load_profile
    table = ops_table([load_profile(n) for n in list_profiles()])
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:] if line and not line.startswith(("yes", "16x8", "("))}
    assert rows["conv2d"][-1] == "yes" and rows["linear"][-1] == "yes" and rows["softmax"][-1] == "-"
    assert "requantize" not in rows


def test_build_16x8_unet_with_4d_output_on_host_c(tmp_path):
    """concat, transposed conv and nearest upsampling stay int8 between 16x8 convs; the 4-D
    output is compared with torch in the target's (NHWC) layout."""
    from examples.zoo import ZOO, zoo_data
    factory, _ = ZOO["tiny_unet"]
    rep = edgeq.build(factory(), zoo_data("tiny_unet", 8, 0), "host-c", tmp_path, precision="16x8")
    assert rep["validation"][0]["exact_fraction"] == 1.0
    assert rep["output_sqnr_db"][0] > 30
    ops = {r["op"]: r["dtype"] for r in rep["quantization"]}
    assert ops["conv2d"] == "int16" and ops["concat"] == "int8" and ops["requantize"] in ("int8", "int16")


def test_16x8_builds_are_byte_identical(tmp_path):
    factory, _ = MODELS["lenet_digits"]
    x = synthetic_data("lenet_digits", 16, 0)
    digests = []
    for run in ("a", "b"):
        rep = edgeq.build(factory(), x, "tflite", tmp_path / run, precision="auto", target_sqnr=60.0)
        digests.append([(a["path"], a["sha256"]) for a in rep["artifacts"]])
    assert digests[0] == digests[1]
