"""Sensitivity figures, plots and `edgeq inspect`."""
import json
from xml.etree import ElementTree

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter, metrics
from edgeq.cli import main
from edgeq.inspect_report import inspect
from edgeq.pipeline import float_graph, quantized_graph
from edgeq.sensitivity import layer_sensitivity, simulate


def _model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        m[2].weight[0].mul_(200.0)   # one huge output channel: the last layer's output range explodes
    return m.eval()


X = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)


def test_simulation_with_nothing_quantized_is_the_float_graph_and_all_quantized_tracks_int8():
    g = float_graph(_model(), [(16,)])
    q = quantized_graph(g, [X], options={"equalization": False, "bias_correction": False})
    np.testing.assert_allclose(simulate(g, q, [X], set())[0], interpreter.run(g, [X])[g.outputs[0]], rtol=1e-6)
    sim = simulate(g, q, [X], {n.name for n in q.nodes})[0]
    ints = interpreter.run(q, [interpreter.quantize_input(q, 0, X)])[q.outputs[0]]
    scale = q.t(q.outputs[0]).quant.scalar()[0]
    assert np.abs(sim - interpreter.dequantize(q, q.outputs[0], ints)).max() <= 2.5 * scale


def test_sensitivity_finds_the_layer_with_the_exploded_range():
    g = float_graph(_model(), [(16,)])
    q = quantized_graph(g, [X], options={"equalization": False, "bias_correction": False})
    s = layer_sensitivity(g, q, [X])
    last = q.nodes[-1].name
    assert min(s, key=lambda k: s[k]["layer_alone_sqnr_db"]) == last
    assert s[last]["higher_precision_gain_db"] > 0


def test_build_writes_plots_and_inspect_names_worst_layer(tmp_path, capsys):
    import edgeq
    edgeq.build(_model(), X, "onnx", tmp_path, equalization=False, bias_correction=False)
    report = json.loads((tmp_path / "report.json").read_text())
    for p in report["plots"]:
        root = ElementTree.fromstring((tmp_path / p).read_bytes())
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and len(list(root.iter())) > 20
    assert "plots/sqnr.svg" in (tmp_path / "report.md").read_text()
    text = inspect(tmp_path, top=1)
    worst = min(report["quantization"], key=lambda r: r["layer_alone_sqnr_db"])
    assert worst["layer"] in text and "module" in text
    assert main(["inspect", str(tmp_path)]) == 0
    assert main(["inspect", str(tmp_path / "missing")]) == 2


def test_default_simulates_the_top_layers_and_all_simulates_every_one(tmp_path):
    """--sensitivity top (default) simulates the few layers that lose the most SQNR and says so;
    --sensitivity all simulates every layer that adds error; shared layers get the same figures."""
    import edgeq
    from edgeq.report import SENSITIVITY_TOP_LAYERS
    torch.manual_seed(3)
    layers = [m for _ in range(SENSITIVITY_TOP_LAYERS + 3) for m in (nn.Linear(16, 16), nn.Tanh())]
    model = nn.Sequential(*layers, nn.Linear(16, 4)).eval()
    reports = {}
    for mode in ("top", "all"):
        edgeq.build(model, X, "onnx", tmp_path / mode, sensitivity=mode)
        reports[mode] = json.loads((tmp_path / mode / "report.json").read_text())
    top = {r["layer"]: r for r in reports["top"]["quantization"] if r["sensitivity_measured"]}
    every = {r["layer"]: r for r in reports["all"]["quantization"] if r["sensitivity_measured"]}
    assert len(top) == SENSITIVITY_TOP_LAYERS and len(every) == 2 * (SENSITIVITY_TOP_LAYERS + 3) + 1
    assert set(top) < set(every)
    for name, row in top.items():
        assert row["layer_alone_sqnr_db"] == every[name]["layer_alone_sqnr_db"]
    md = (tmp_path / "top" / "report.md").read_text()
    assert f"simulated for {SENSITIVITY_TOP_LAYERS} of" in md and "--sensitivity all" in md
    from edgeq.errors import EdgeqError
    with pytest.raises(EdgeqError, match="unknown --sensitivity 'some'"):
        edgeq.build(model, X, "onnx", tmp_path / "bad", sensitivity="some")


def test_restarted_simulations_equal_full_runs():
    """layer_sensitivity restarts each simulation at the changed layer and goes through the
    samples in chunks; the figures are those of full runs of simulate() on each chunk, their
    energies and correct answers summed over the chunks (computed here independently)."""
    from edgeq.sensitivity import SENSITIVITY_CHUNK
    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(2, 4, 3), nn.PReLU(4), nn.MaxPool2d(2), nn.Conv2d(4, 4, 1), nn.ReLU(),
                      nn.Flatten(), nn.Linear(4 * 3 * 3, 3)).eval()
    x = np.random.default_rng(1).normal(size=(20, 2, 8, 8)).astype(np.float32)
    labels = np.arange(20) % 3
    g = float_graph(m, [(2, 8, 8)])
    q = quantized_graph(g, [x], options={"equalization": False, "bias_correction": False})
    s = layer_sensitivity(g, q, [x], labels)
    names = [n.name for n in q.nodes if n.name in {f.name for f in g.nodes}]
    chunks = [slice(i, i + SENSITIVITY_CHUNK) for i in range(0, len(x), SENSITIVITY_CHUNK)]
    assert len(chunks) > 1

    def figures(quantized: set[str]) -> tuple[float, float]:
        signal = noise = 0.0
        correct = 0
        for c in chunks:
            ref = simulate(g, q, [x[c]], set())[0].astype(np.float64)
            out = simulate(g, q, [x[c]], quantized)[0].astype(np.float64)
            signal += float(np.sum(ref ** 2))
            noise += float(np.sum((ref - out) ** 2))
            correct += int((out.argmax(axis=1) == labels[c]).sum())
        return 10 * np.log10(signal / noise), correct / len(x)

    base_db, base_acc = figures(set(names))
    for name in names:
        kept_db, kept_acc = figures(set(names) - {name})
        assert s[name]["layer_alone_sqnr_db"] == pytest.approx(figures({name})[0], abs=1e-9)
        assert s[name]["higher_precision_gain_db"] == pytest.approx(kept_db - base_db, abs=1e-9)
        assert s[name]["higher_precision_gain_accuracy"] == pytest.approx(kept_acc - base_acc, abs=1e-12)


class _Gru(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.gru = nn.GRU(6, 12, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.fc(self.gru(x)[0][:, -1])


def test_a_loop_layer_alone_is_simulated_in_float_on_dequantized_weights():
    """The loop's step runs its float kernels with the dequantized weights (it once ran the
    integer kernels on float values): quantizing the loop alone tracks both the float model and
    the integer reference of the whole model."""
    xs = np.random.default_rng(2).normal(size=(32, 10, 6)).astype(np.float32)
    g = float_graph(_Gru(), [(10, 6)])
    q = quantized_graph(g, [xs], options={"equalization": False, "bias_correction": False})
    scan = next(n.name for n in q.nodes if n.op == "scan")
    s = layer_sensitivity(g, q, [xs], layers=[scan])
    ints = interpreter.run(q, [interpreter.quantize_input(q, 0, xs)])[q.outputs[0]]
    int8_sqnr = float(metrics.sqnr_db(interpreter.run(g, [xs])[g.outputs[0]],
                                      interpreter.dequantize(q, q.outputs[0], ints)))
    assert s[scan]["layer_alone_sqnr_db"] > 20.0 and int8_sqnr > 20.0
    everything = simulate(g, q, [xs], {n.name for n in q.nodes})[0]
    scale = q.t(q.outputs[0]).quant.scalar()[0]
    assert np.abs(everything - interpreter.dequantize(q, q.outputs[0], ints)).max() <= 8 * scale
