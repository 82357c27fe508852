"""--precision auto: layers promoted one at a time, most sensitive first, stopping as soon as the
target is met; and the user-facing errors and report entries."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import edgeq
from edgeq.errors import EdgeqError
from edgeq.evaluation import output_sqnr
from edgeq.mixed_precision import DEFAULT_FLOOR_DB, PrecisionRequest, candidates_of, resolve_layers, sensitivity_order
from edgeq.pipeline import float_graph, quantize_model, quantized_graph
from examples.models import MODELS, synthetic_data
from tests.helpers import IntegratingLstm, integrating_lstm_data

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


def test_requests_without_labels_are_refused_and_auto_defaults_to_the_floor():
    request = PrecisionRequest("auto")
    request.check()
    assert request.floor_default and request.target_sqnr_db == DEFAULT_FLOOR_DB
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


def test_named_layers_are_promoted_under_the_default_precision(dscnn, tmp_path):
    """--int16-layers without --precision: the default auto promotes exactly the layers named
    (the int8 build meets the floor, and once that ignored them), as --precision int8 does."""
    g, x = dscnn
    layer = next(n.name for n in g.nodes if n.op == "conv2d")
    by_default = quantize_model(g, x, method="minmax", options=FAST,
                                precision=PrecisionRequest("auto", layers=[layer])).precision
    as_int8 = quantize_model(g, x, method="minmax", options=FAST,
                             precision=PrecisionRequest("int8", layers=[layer])).precision
    assert by_default["promoted_layers"] == as_int8["promoted_layers"] == [layer]
    assert by_default["int16_layers"] == as_int8["int16_layers"]


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


class OutlierMlp(torch.nn.Module):
    """One hidden unit 300x larger than the others (tanh between the layers: no equalization
    can rescale it): one int8 scale for the hidden activations rounds the other units away
    (int8 "loses the model"); int16 keeps them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 4)
        with torch.no_grad():
            self.fc1.weight[0] *= 300.0
            self.fc1.bias[0] = 300.0
            self.fc2.weight[:, 0] = torch.tensor([1.0, -1.0, 0.5, 2.0]) / 300.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.tanh(self.fc1(x)))


def _outlier_data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


def test_default_precision_promotes_only_where_int8_loses_the_model(tmp_path):
    cal, ev = _outlier_data(64, 0), _outlier_data(32, 1)
    int8 = edgeq.build(OutlierMlp().eval(), cal, "onnx", tmp_path / "int8", eval_data=ev, precision="int8")
    default = edgeq.build(OutlierMlp().eval(), cal, "onnx", tmp_path / "default", eval_data=ev)
    assert int8["output_sqnr_db"][0] < DEFAULT_FLOOR_DB <= default["output_sqnr_db"][0]
    p = default["precision"]
    assert p["mode"] == "auto" and p["default_floor"] and p["target_met"] and p["int16_layers"]
    assert "## Mixed precision" in (tmp_path / "default" / "report.md").read_text()


def test_default_precision_keeps_int8_builds_byte_identical(tmp_path):
    factory, _ = MODELS["lenet_digits"]
    x = synthetic_data("lenet_digits", 32, 0)
    a = edgeq.build(factory(), x, "onnx", tmp_path / "a", precision="int8")
    b = edgeq.build(factory(), x, "onnx", tmp_path / "b")
    assert b["precision"]["searched"] is False and b["precision"]["int16_layers"] == []
    assert (tmp_path / "a" / "model.onnx").read_bytes() == (tmp_path / "b" / "model.onnx").read_bytes()
    assert a["output_sqnr_db"] == b["output_sqnr_db"]


def test_promotions_the_target_refuses_are_skipped():
    g = float_graph(OutlierMlp().eval(), [(8,)])
    refuse_int16 = (lambda q: "no 16x8 kernel here" if any(t.dtype == "int16" for t in q.tensors.values())
                    else None)
    result = quantize_model(g, [_outlier_data(64, 0)], options=FAST, precision=PrecisionRequest("auto"),
                            accepts=refuse_int16)
    info = result.precision
    assert info["int16_layers"] == [] and not info["target_met"]
    assert info["refused"] and all(r["reason"] == "no 16x8 kernel here" for r in info["refused"])
    assert all(t.dtype != "int16" for t in result.graph.tensors.values())


def test_cli_auto_without_target_uses_the_floor(tmp_path):
    np.save(tmp_path / "cal.npy", synthetic_data("lenet_digits", 8, 0))
    res = subprocess.run([sys.executable, "-m", "edgeq.cli", "build", "examples/models.py:lenet_digits", "--target",
                          "onnx", "--calibration", str(tmp_path / "cal.npy"), "-o", str(tmp_path / "o"),
                          "--precision", "auto", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["precision"]["target_sqnr_db"] == DEFAULT_FLOOR_DB


CELL_STATE = "lstm.l0.c_new"      # the candidate of IntegratingLstm's cell state: the body layer writing it


def test_int8_cell_state_loses_an_integrating_lstm_and_auto_keeps_it_in_int16():
    """Against torch float: int8 below the floor, the default (auto) promotes the cell state as
    one candidate (its whole tie group) and meets it."""
    model = IntegratingLstm().eval()
    g = float_graph(model, [(IntegratingLstm.steps, 4)])
    cal, ev = integrating_lstm_data(64, 0), integrating_lstm_data(32, 1)
    with torch.no_grad():
        reference = {g.outputs[0]: model(torch.from_numpy(ev)).numpy()}
    int8 = quantize_model(g, [cal], precision=PrecisionRequest("int8"))
    auto = quantize_model(g, [cal], precision=PrecisionRequest("auto"))
    assert CELL_STATE in candidates_of(g) and CELL_STATE in sensitivity_order(g, int8.graph, [cal[:8]])
    sqnr8, sqnr_auto = output_sqnr(g, reference, int8.graph, [ev]), output_sqnr(g, reference, auto.graph, [ev])
    assert sqnr8 < DEFAULT_FLOOR_DB <= sqnr_auto, (sqnr8, sqnr_auto)
    info = auto.precision
    assert info["promoted_layers"] == [CELL_STATE] and info["target_met"]
    assert {"lstm.l0.c", "lstm.l0.c_new"} <= set(info["int16_tensors"])
    assert info["steps"][1]["output_sqnr_db"] > info["steps"][0]["output_sqnr_db"] + 10


@pytest.mark.parametrize("target", ["onnx", "tflite", "host-c", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_default_build_of_an_integrating_lstm_is_16x8_inside_the_loop_and_exact(target, tmp_path):
    """The default build promotes the cell state on every target, each runtime bit-exact with
    the integer reference (LiteRT's default XNNPACK kernels are not a reference)."""
    cal, ev = integrating_lstm_data(32, 0), integrating_lstm_data(8, 1)
    rep = edgeq.build(IntegratingLstm().eval(), cal, target, tmp_path, eval_data=ev)
    p = rep["precision"]
    assert p["promoted_layers"] == [CELL_STATE] and p["refused"] == []
    assert p["steps"][0]["output_sqnr_db"] < DEFAULT_FLOOR_DB <= rep["output_sqnr_db"][0]
    assert {"lstm.l0.f_c", "lstm.l0.c_new", "lstm.l0.tanh_c"} <= set(p["int16_layers"])
    exact = [v for v in rep["validation"] if "XNNPACK" not in v["runtime"]]
    assert len(exact) == {"onnx": 2, "tflite": 2, "host-c": 1, "cortex-m4": 1}[target]   # cortex-m4: QEMU
    assert all(v["max_abs_diff_lsb"] == 0 for v in exact), rep["validation"]


def test_word_aligned_arrays_of_a_loop_body_alone_compile_in_c_and_are_exact(tmp_path):
    """Every top-level linear layer in 16x8 (unpacked weights) leaves the loop body's int8
    recurrent projections as the only word-aligned arrays: NAME_weights.c defines the alignment
    macro for them too (it once was left undefined, and gcc failed)."""
    cal, ev = integrating_lstm_data(32, 0), integrating_lstm_data(8, 1)
    top = ["lstm_l0_x_i", "lstm_l0_x_f", "lstm_l0_x_g", "lstm_l0_x_o", "addmm"]
    rep = edgeq.build(IntegratingLstm().eval(), cal, "host-c", tmp_path, eval_data=ev, precision="int8",
                      int16_layers=top)
    assert set(top) <= set(rep["precision"]["int16_layers"])
    assert [v["max_abs_diff_lsb"] for v in rep["validation"]] == [0]


def test_promoted_cell_state_refused_by_the_target_is_skipped():
    g = float_graph(IntegratingLstm().eval(), [(IntegratingLstm.steps, 4)])

    def no_int16_loops(q):
        scan = next(n for n in q.nodes if n.op == "scan")
        wide = any(t.dtype == "int16" for t in scan.attrs["body"].tensors.values())
        return "no 16x8 loop body" if wide else None

    info = quantize_model(g, [integrating_lstm_data(32, 0)], options=FAST, precision=PrecisionRequest("auto"),
                          accepts=no_int16_loops).precision
    assert {"layer": CELL_STATE, "reason": "no 16x8 loop body"} in info["refused"]
    assert CELL_STATE not in info["promoted_layers"]


def test_cell_state_by_name_and_by_module():
    g = float_graph(IntegratingLstm().eval(), [(IntegratingLstm.steps, 4)])
    assert resolve_layers(g, [CELL_STATE]) == [CELL_STATE]
    assert CELL_STATE in resolve_layers(g, ["lstm"])      # a module selects its loop's states too


@pytest.mark.parametrize("name", ["gru_kws", pytest.param("speaker_lstm", marks=pytest.mark.slow)])
def test_recurrent_zoo_models_meeting_the_floor_build_as_int8(name, tmp_path):
    """Recurrent zoo models that int8 keeps above the floor: the default build is the int8
    build, byte for byte (their loops' states are candidates, never searched)."""
    seq = pytest.importorskip("examples.sequence_zoo")
    factory, _ = seq.SEQUENCE_ZOO[name]
    cal = seq.sequence_data(name, 32, 0)[0]
    edgeq.build(factory().eval(), cal, "tflite", tmp_path / "a", precision="int8")
    b = edgeq.build(factory().eval(), cal, "tflite", tmp_path / "b")
    assert b["precision"]["searched"] is False and b["precision"]["int8_sqnr_db"] >= DEFAULT_FLOOR_DB
    assert (tmp_path / "a" / "model.tflite").read_bytes() == (tmp_path / "b" / "model.tflite").read_bytes()
