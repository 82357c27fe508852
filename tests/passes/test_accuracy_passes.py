"""Cross-layer equalization keeps the float function and balances ranges; bias correction
removes the mean shift weight quantization causes."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.calibration import calibrate
from edgeq.evaluation import cross_fitted_sqnrs
from edgeq.passes.bias_correction import MIN_FOLD, correct_bias, cross_fitted_correction
from edgeq.passes.equalize import equalizable_pairs, equalize_cross_layer
from edgeq.pipeline import float_graph, output_sqnr
from edgeq.quantize import quantize


def _separable():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.Conv2d(8, 16, 1), nn.ReLU(),
                      nn.Conv2d(16, 4, 1))
    with torch.no_grad():   # wildly unbalanced depthwise channels, as in real MobileNets
        m[0].weight.mul_(torch.logspace(-2, 1, 8).reshape(8, 1, 1, 1))
        m[0].bias.mul_(torch.logspace(-2, 1, 8))
    return m.eval()


X = np.random.default_rng(0).normal(size=(64, 8, 10, 10)).astype(np.float32)


def test_equalization_preserves_the_float_function_and_balances_ranges():
    g = float_graph(_separable(), [(8, 10, 10)])
    assert len(equalizable_pairs(g)) == 2
    e = equalize_cross_layer(g)
    np.testing.assert_allclose(interpreter.run(e, [X])[e.outputs[0]], interpreter.run(g, [X])[g.outputs[0]],
                               rtol=1e-4, atol=1e-4)
    dw_before = np.abs(g.t(g.nodes[0].inputs[1]).data).reshape(8, -1).max(axis=1)
    dw_after = np.abs(e.t(e.nodes[0].inputs[1]).data).reshape(8, -1).max(axis=1)
    assert dw_after.max() / dw_after.min() < dw_before.max() / dw_before.min() / 10


def test_equalization_reduces_quantization_error_on_unbalanced_channels():
    g = float_graph(_separable(), [(8, 10, 10)])
    e = equalize_cross_layer(g)
    ref = interpreter.run(g, [X])
    plain = output_sqnr(g, ref, quantize(g, calibrate(g, [X], "minmax")), [X])
    equalized = output_sqnr(g, ref, quantize(e, calibrate(e, [X], "minmax")), [X])
    assert equalized > plain + 2.0   # measured +2.6 dB (weights are per-channel already)


def test_equalization_skips_relu6_pairs():
    m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU6(), nn.Conv2d(4, 2, 1)).eval()
    assert equalizable_pairs(float_graph(m, [(3, 4, 4)])) == []


def test_bias_correction_removes_mean_shift():
    torch.manual_seed(1)
    lin = nn.Linear(256, 8)
    with torch.no_grad():
        lin.weight.copy_(torch.rand(8, 256) * 0.02 + 0.5)  # all-positive weights: rounding bias adds up
    m = nn.Sequential(lin).eval()
    x = np.abs(np.random.default_rng(2).normal(1.0, 0.2, (128, 256))).astype(np.float32)
    g = float_graph(m, [(256,)])
    q = quantize(g, calibrate(g, [x], "minmax"), {"linear_per_channel": False})
    qb = correct_bias(g, q, [x])
    ref = interpreter.run(g, [x])[g.outputs[0]]

    def mean_err(graph):
        out = interpreter.run(graph, [interpreter.quantize_input(graph, 0, x)])[graph.outputs[0]]
        return np.abs((interpreter.dequantize(graph, graph.outputs[0], out) - ref).mean(axis=0)).mean()

    assert mean_err(qb) < mean_err(q) / 2
    # only the bias changed, and it is still int32 at the same scale
    assert q.t(q.nodes[0].inputs[2]).quant.scale.tolist() == qb.t(qb.nodes[0].inputs[2]).quant.scale.tolist()
    assert qb.t(qb.nodes[0].inputs[2]).data.dtype == np.int32


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                                   nn.ConvTranspose2d(3, 4, 2, stride=2)], ids=["conv", "depthwise", "transposed"])
def test_bias_correction_subtracts_the_mean_shift_in_double_precision(layer):
    """Each corrected bias is the original minus round(shift / bias scale), the shift being the
    per-channel mean of (layer with dequantized weights - float layer), computed here with
    torch in float64 (ties within 1e-3 of a half step are not asserted)."""
    torch.manual_seed(2)
    m = nn.Sequential(layer).eval()
    cin = layer.in_channels
    x = np.random.default_rng(3).normal(0.5, 1.0, (16, cin, 8, 8)).astype(np.float32)
    g = float_graph(m, [(cin, 8, 8)])
    q = quantize(g, calibrate(g, [x], "minmax"), {})
    qb = correct_bias(g, q, [x])
    node, fnode = q.nodes[0], g.nodes[0]
    wq, b = q.t(node.inputs[1]), q.t(node.inputs[2])
    shape = [1] * wq.data.ndim
    shape[wq.quant.axis] = -1
    w_dq = torch.from_numpy(wq.data.astype(np.float64) * wq.quant.scale.astype(np.float64).reshape(shape))
    w_f = torch.from_numpy(g.t(fnode.inputs[1]).data.astype(np.float64))
    # the IR's transposed-conv weight is (out, in, kh, kw); torch's is (in, out, kh, kw)
    run = (lambda w: torch.nn.functional.conv_transpose2d(torch.from_numpy(x).double(), w.transpose(0, 1),
                                                          stride=2)) \
        if isinstance(layer, nn.ConvTranspose2d) else \
        (lambda w: torch.nn.functional.conv2d(torch.from_numpy(x).double(), w, stride=layer.stride,
                                              padding=layer.padding, groups=layer.groups))
    shift = (run(w_dq) - run(w_f)).mean(dim=(0, 2, 3)).numpy()
    steps = shift / b.quant.scale.astype(np.float64)
    clear = np.abs(np.abs(steps - np.floor(steps)) - 0.5) > 1e-3
    expected = b.data.astype(np.int64) - np.round(steps).astype(np.int64)
    got = qb.t(qb.nodes[0].inputs[2]).data.astype(np.int64)
    assert clear.sum() >= len(clear) - 1
    np.testing.assert_array_equal(got[clear], expected[clear])
    assert np.any(got != b.data)


def _bias(graph):
    return graph.t(graph.nodes[0].inputs[2]).data.astype(np.int64)


def test_cross_fitted_bias_correction_fits_each_fold_on_the_other_and_the_whole_on_both():
    """Each fold's graph carries the correction measured on the other fold's samples alone; the
    returned graph, the correction of the whole sample (the size-weighted mean of the folds'
    shifts, which is the whole sample's mean shift: ties within 1e-3 of a half step excepted)."""
    torch.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1)).eval()
    x = np.random.default_rng(5).normal(0.5, 1.0, (40, 3, 6, 6)).astype(np.float32)
    g = float_graph(m, [(3, 6, 6)])
    q = quantize(g, calibrate(g, [x], "minmax"), {})
    fitted = cross_fitted_correction(g, q, [x], folds=2)
    (rows_a, q_a), (rows_b, q_b) = fitted.folds
    assert (rows_a.start, rows_a.stop, rows_b.start, rows_b.stop) == (0, 20, 20, 40)
    np.testing.assert_array_equal(_bias(q_a), _bias(correct_bias(g, q, [x[20:]])))
    np.testing.assert_array_equal(_bias(q_b), _bias(correct_bias(g, q, [x[:20]])))
    assert np.any(_bias(q_a) != _bias(q_b))
    whole = _bias(correct_bias(g, q, [x]))
    assert np.abs(_bias(fitted.graph) - whole).max() <= 1 and np.sum(_bias(fitted.graph) != whole) <= 1
    # the default four folds of 10: each graph corrected on the 30 other samples
    four = cross_fitted_correction(g, q, [x])
    assert [(r.start, r.stop) for r, _ in four.folds] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    np.testing.assert_array_equal(_bias(four.folds[1][1]), _bias(correct_bias(g, q, [np.concatenate([x[:10], x[20:]])])))
    # too few samples for two folds of MIN_FOLD: one fold, the in-sample correction
    small = cross_fitted_correction(g, q, [x[:2 * MIN_FOLD - 1]])
    assert len(small.folds) == 1 and small.folds[0][1] is small.graph
    np.testing.assert_array_equal(_bias(small.graph), _bias(correct_bias(g, q, [x[:2 * MIN_FOLD - 1]])))


def test_cross_fitted_sqnrs_score_each_fold_with_its_own_graph():
    """The SQNR of the concatenated outputs, each fold run by the graph fitted without it,
    recomputed here from the runs with numpy."""
    torch.manual_seed(6)
    m = nn.Sequential(nn.Linear(16, 4)).eval()
    x = np.random.default_rng(7).normal(size=(32, 16)).astype(np.float32)
    g = float_graph(m, [(16,)])
    q = quantize(g, calibrate(g, [x], "minmax"), {})
    fitted = cross_fitted_correction(g, q, [x])
    ref = interpreter.run(g, [x])
    got = cross_fitted_sqnrs(g, ref, fitted.folds, [x])
    approx = np.concatenate([interpreter.dequantize(qf, qf.outputs[0], interpreter.run(
        qf, [interpreter.quantize_input(qf, 0, x[rows])])[qf.outputs[0]]) for rows, qf in fitted.folds])
    r = ref[g.outputs[0]].astype(np.float64)
    expected = 10 * np.log10(np.sum(r ** 2) / np.sum((r - approx) ** 2))
    assert got == pytest.approx([expected], abs=1e-9)


def test_a_fold_measurement_is_reused_only_by_graphs_with_the_same_weights():
    """Other activation ranges quantize the weights alike: their correction from the first
    candidate's measurement equals a fresh one (each fold's shift is measured on the float run,
    and re-quantized at each graph's own bias scale). A graph with other weights measures anew."""
    torch.manual_seed(8)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    x = np.random.default_rng(9).normal(0.3, 1.0, (32, 3, 6, 6)).astype(np.float32)
    g = float_graph(m, [(3, 6, 6)])
    first = cross_fitted_correction(g, quantize(g, calibrate(g, [x], "minmax"), {}), [x])
    q_mse = quantize(g, calibrate(g, [x], "mse"), {})
    assert first.shifts.fits(q_mse)
    reused = cross_fitted_correction(g, q_mse, [x], measured=first.shifts)
    assert reused.shifts is first.shifts
    fresh = cross_fitted_correction(g, q_mse, [x])
    for (rows_a, a), (rows_b, b) in zip(reused.folds + [(None, reused.graph)], fresh.folds + [(None, fresh.graph)]):
        assert rows_a == rows_b
        for node in a.nodes:
            if node.op == "conv2d":
                np.testing.assert_array_equal(a.t(node.inputs[2]).data, b.t(node.inputs[2]).data)
    # other weights (a scaled filter): the measurement does not fit and is not used
    m[0].weight.data *= 1.5
    g2 = float_graph(m, [(3, 6, 6)])
    q2 = quantize(g2, calibrate(g2, [x], "mse"), {})
    assert not first.shifts.fits(q2)
    assert cross_fitted_correction(g2, q2, [x], measured=first.shifts).shifts is not first.shifts
