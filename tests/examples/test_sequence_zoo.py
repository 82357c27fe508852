"""The real-models zoo (examples/sequence_zoo.py): every model traces to a float graph that
computes what torch computes, and builds for each target with the integer reference's answers
(bit-exact where the runtime uses the same integer math) and an output SQNR against torch's
float outputs of at least 25 dB on the zoo's realistic inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import edgeq
from edgeq import interpreter
from edgeq.pipeline import float_graph
from examples.sequence_zoo import SEQUENCE_ZOO, sequence_data
from tests.helpers import ort_held_to_qdq_bounds

MODELS = sorted(SEQUENCE_ZOO)
EXACT_RUNTIMES = {"tflite": ("tflite-micro", "BUILTIN_REF"), "host-c": ("gcc",)}


def _torch_outputs(name: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    model = SEQUENCE_ZOO[name][0]().eval()
    with torch.no_grad():
        out = model(*[torch.from_numpy(x) for x in xs])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name", MODELS)
def test_float_graph_matches_torch(name: str, one_torch_thread: None) -> None:
    xs = sequence_data(name, 8, seed=3)
    g = float_graph(SEQUENCE_ZOO[name][0](), [x.shape[1:] for x in xs],
                    [x.dtype.kind in "iu" for x in xs])
    got = interpreter.run(g, xs)
    for want, out in zip(_torch_outputs(name, xs), g.outputs):
        np.testing.assert_allclose(got[out], want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tflite", "onnx"])
@pytest.mark.parametrize("name", MODELS)
def test_builds_with_25_db_and_exact_runtimes(name: str, target: str, tmp_path, one_torch_thread: None) -> None:
    cal, ev = sequence_data(name, 64, seed=0), sequence_data(name, 32, seed=1)
    rep = edgeq.build(SEQUENCE_ZOO[name][0](), cal, target, tmp_path / "out", eval_data=ev, name="zoo")
    assert rep["failures"] == []
    for v in rep["validation"]:
        if any(key in v["runtime"] for key in EXACT_RUNTIMES.get(target, ())):
            assert v["exact_fraction"] == 1.0, v
        elif ort_held_to_qdq_bounds(v["runtime"]):  # ORT and XNNPACK round float ops their own way
            assert v["max_abs_diff_lsb"] <= 8, v
    # the integer reference against the float graph, which test_float_graph_matches_torch ties to torch
    for sqnr in rep["output_sqnr_db"]:
        assert sqnr >= 25.0, rep["output_sqnr_db"]
