"""Size and latency before and after (edgeq.latency) in the build report."""
import time
from pathlib import Path

import pytest
import torch

import edgeq
from edgeq.latency import MIN_RUNS, timed

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "calibration" / "digits"
LENET = ROOT / "examples" / "digits" / "lenet.pt2"


def test_timed_measures_what_it_runs():
    stats = timed(lambda: time.sleep(0.002), budget_s=0.05)
    assert stats["runs"] >= MIN_RUNS
    assert 1.9 <= stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"] < 50


@pytest.mark.parametrize("target, expected", [
    ("onnx", [("float", "torch"), ("float", "onnxruntime"), ("int8", "onnxruntime")]),
    ("tflite", [("float", "torch"), ("int8", "LiteRT 2.3.0 (default kernels, XNNPACK)")]),
])
def test_report_has_float_and_int8_latency_and_sizes(target, expected, tmp_path):
    rep = edgeq.build(str(LENET), str(DIGITS / "calib.npy"), target, tmp_path, max_eval_samples=16)
    got = [(e["model"], e["runtime"]) for e in rep["latency"]]
    assert len(got) == len(expected)
    for (model, runtime), (want_model, want_runtime) in zip(got, expected):
        assert model == want_model and runtime.startswith(want_runtime)
    for e in rep["latency"]:
        assert e["runs"] >= MIN_RUNS and 0 < e["p10_ms"] <= e["median_ms"] <= e["p90_ms"] and e["batch"] == 1
    state = torch.export.load(str(LENET)).state_dict
    assert rep["size"]["float_bytes"] == sum(t.numel() * t.element_size() for t in state.values())
    assert rep["size"]["artifact_bytes"] == (tmp_path / f"model.{target}").stat().st_size
    assert "## Size and speed" in (tmp_path / "report.md").read_text()


def test_size_comparison_says_larger_when_the_artifact_outgrows_the_float_weights():
    from edgeq.latency import sizes
    assert sizes(40_000, 10_000, {})["comparison"] == "4.0x smaller"
    # a tiny model: the format's overhead outweighs the 4x of int8 weights
    assert sizes(29_896, 33_161, {})["comparison"] == "1.11x larger"
    assert sizes(29_896, 33_161, {"flash_bytes": 9_000})["comparison"] == "3.3x smaller"
