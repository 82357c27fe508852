"""Calibration methods on constructed distributions whose best range is known."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from edgeq.calibration import calibrate
from edgeq.quant import scale_zero_point
from edgeq.errors import EdgeqError
from edgeq import interpreter
from edgeq.pipeline import float_graph, quantize_model


def _graph():
    return float_graph(nn.Sequential(nn.Identity()).eval(), [(1000,)])


def _relu_graph():
    return float_graph(nn.Sequential(nn.ReLU()).eval(), [(1000,)])


def test_minmax_is_exact_range():
    x = np.random.default_rng(0).uniform(-2, 3, (20, 1000)).astype(np.float32)
    g = _relu_graph()
    r = calibrate(g, [x], "minmax")
    assert r[g.inputs[0]] == (float(x.min()), float(x.max()))


def test_percentile_clips_rare_outliers():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (50, 1000)).astype(np.float32)
    x[0, 0] = 100.0   # one outlier in 50,000 values
    g = _relu_graph()
    lo, hi = calibrate(g, [x], "percentile", percentile=99.9)[g.inputs[0]]
    assert -1.1 < lo < -0.9 and 0.9 < hi < 1.2


def test_mse_clips_a_long_tail_but_keeps_a_uniform_range():
    rng = np.random.default_rng(0)
    g = _relu_graph()
    uniform = rng.uniform(-1, 1, (20, 1000)).astype(np.float32)
    lo, hi = calibrate(g, [uniform], "mse")[g.inputs[0]]
    assert hi > 0.95 and lo < -0.95   # nothing to gain from clipping a uniform distribution
    laplace = rng.laplace(0, 0.1, (200, 1000)).astype(np.float32)
    lo, hi = calibrate(g, [laplace], "mse")[g.inputs[0]]
    # Known optimum for 8-bit uniform quantization of Laplace(b): clip at about 9.89 b (Banner et
    # al., ACIQ), here 0.99, well inside the sample max (about 1.2 for 200k samples).
    assert 0.85 < hi < 1.1 and -1.1 < lo < -0.85 and hi < laplace.max()


def test_calibration_streams_in_batches_with_the_same_result():
    x = np.random.default_rng(3).normal(size=(100, 1000)).astype(np.float32)
    g = _relu_graph()
    from edgeq import calibration as c
    a = c.calibrate(g, [x], "mse", batch_size=7)
    b = c.calibrate(g, [x], "mse", batch_size=100)
    assert a == b


def test_scale_zero_point_covers_zero_and_range():
    s, zp = scale_zero_point(0.0, 6.0)
    assert zp == -128 and abs(s * 255 - 6.0) < 1e-6
    s, zp = scale_zero_point(-1.0, 1.0)
    assert zp in (-1, 0) and abs((127 - zp) * s - 1.0) < 2 * s


def test_unknown_method_is_refused():
    with pytest.raises(EdgeqError, match="minmax"):
        calibrate(_relu_graph(), [np.zeros((2, 1000), np.float32)], "magic")


def test_entropy_clips_a_heavy_tail_and_keeps_a_uniform_range():
    rng = np.random.default_rng(0)
    g = _relu_graph()
    lo, hi = calibrate(g, [rng.uniform(-1, 1, (20, 1000)).astype(np.float32)], "entropy")[g.inputs[0]]
    assert hi > 0.9 and lo < -0.9
    # a uniform bulk on [-1, 1] plus 0.01 % far outliers: the full range would squeeze the bulk
    # into about 13 of the 256 levels; the least-divergence range clips near the bulk's edges
    x = rng.uniform(-1, 1, (100, 1000)).astype(np.float32)
    x[0, :5], x[1, :5] = 20.0, -20.0
    lo, hi = calibrate(g, [x], "entropy")[g.inputs[0]]
    assert 0.9 < hi < 6.0 and -6.0 < lo < -0.9


def test_kl_divergence_is_zero_when_quantization_loses_nothing():
    from edgeq.calibration import BINS, kl_divergence_after_quantization
    hist = np.zeros(BINS, np.int64)
    hist[::8] = 5          # exactly one occupied bin per int8 level: nothing is merged
    assert kl_divergence_after_quantization(hist, 0.0, 1.0, 0.0, 1.0) == pytest.approx(0.0, abs=1e-12)
    hist[1::8] = 1         # two bins of different mass per level: merging spreads mass evenly
    assert kl_divergence_after_quantization(hist, 0.0, 1.0, 0.0, 1.0) > 0.01


@pytest.mark.parametrize("case", ["heavy_tails", "shifted", "relu", "half_zeros", "sparse"])
def test_every_windows_kl_at_once_is_each_windows_kl(case):
    """``window_kls`` (prefix sums, all windows together) against ``kl_divergence_after_quantization``
    run window by window on the entropy grid, and the chosen range is the grid's first minimum."""
    from edgeq.calibration import (BINS, Histogram, _clipping_fractions, _entropy_range,
                                   kl_divergence_after_quantization, window_kls)
    rng = np.random.default_rng(["heavy_tails", "shifted", "relu", "half_zeros", "sparse"].index(case))
    x = rng.standard_t(3, 20000) * 2.0
    x = {"shifted": x + 2.5, "relu": np.maximum(x, 0), "sparse": np.round(x * 2) / 2}.get(case, x)
    if case == "half_zeros":
        x[rng.random(x.size) < 0.5] = 0.0
    a, b = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    h = Histogram(np.histogram(x, bins=BINS, range=(a, b))[0], a, b, int((x == 0).sum()))
    counts, fracs = h.without_exact_zeros(), _clipping_fractions()
    lo, hi = (m.ravel() for m in np.meshgrid(a * (fracs if a < 0 else np.array([1.0])), b * fracs, indexing="ij"))
    one_by_one = np.array([kl_divergence_after_quantization(counts, a, b, lo_k, hi_k) for lo_k, hi_k in zip(lo, hi)])
    np.testing.assert_allclose(window_kls(counts, a, b, lo, hi), one_by_one, rtol=0, atol=1e-12)
    k = int(np.argmin(one_by_one))
    assert _entropy_range(h, 99.99) == (lo[k], hi[k])


def test_auto_picks_the_candidate_with_least_consumer_error():
    from edgeq.calibration import choose_by_layer_output_error
    g = float_graph(nn.Sequential(nn.Linear(1000, 4)).eval(), [(1000,)])
    x = np.random.default_rng(0).laplace(0, 1.0, (16, 1000)).astype(np.float32)
    good = (float(x.min()), float(x.max()))
    bad = (-0.01, 0.01)   # clips almost everything: a terrible range
    picked = choose_by_layer_output_error(g, [x], {g.inputs[0]: {"mse": bad, "minmax": good},
                                                   g.outputs[0]: {"mse": (-50.0, 50.0)}}, 60)
    assert picked[g.inputs[0]] == good


class _MaskedSoftmax(nn.Module):
    """Attention scores plus an additive mask (-10000 on padding), then softmax."""

    def forward(self, scores, mask):
        return torch.softmax(scores + (1.0 - mask) * -10000.0, dim=-1)


@pytest.mark.parametrize("method", ["minmax", "mse"])
def test_an_additive_mask_does_not_take_the_softmax_input_range(method):
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 2, (64, 4, 16)).astype(np.float32)
    lengths = rng.integers(4, 17, 64)
    mask = (np.arange(16)[None, None, :] < lengths[:, None, None]).astype(np.float32).repeat(4, axis=1)
    model = _MaskedSoftmax().eval()
    g = float_graph(model, [(4, 16), (4, 16)])
    r = calibrate(g, [scores, mask], method)
    logits = next(n.inputs[0] for n in g.nodes if n.op == "softmax")
    lo, _ = r[logits]
    masked = scores + (1.0 - mask) * -10000.0
    assert lo >= masked.max(axis=-1).min() - 20.0 - 1e-5 and lo > -100.0   # not the mask's -10000
    # the quantized model's probabilities against torch's float ones
    q = quantize_model(g, [scores, mask], method).graph
    xq = [interpreter.quantize_input(q, i, x) for i, x in enumerate([scores, mask])]
    got = interpreter.dequantize(q, q.outputs[0], interpreter.run(q, xq)[q.outputs[0]]).astype(np.float64)
    want = model(torch.from_numpy(scores), torch.from_numpy(mask)).numpy()
    sqnr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert sqnr > 30.0


class _FaceScore(nn.Module):
    """A 2-class softmax (a face detector's face / no-face probability)."""

    def forward(self, logits):
        return torch.softmax(logits, dim=1)


@pytest.mark.parametrize("method", ["minmax", "mse"])
def test_the_softmax_floor_holds_for_every_row(method):
    # a confident classifier: each row's logits share a large offset, so many rows' maxima lie
    # far below the tensor's largest logit; a floor under that largest logit clipped them both
    rng = np.random.default_rng(1)
    offset, half_gap = rng.uniform(-12.0, 12.0, (256, 1)), rng.uniform(-2.0, 2.0, (256, 1))
    logits = np.concatenate([offset + half_gap, offset - half_gap], axis=1).astype(np.float32)
    g = float_graph(_FaceScore().eval(), [(2,)])
    q = quantize_model(g, [logits], method).graph
    got = interpreter.dequantize(q, q.outputs[0], interpreter.run(q, [interpreter.quantize_input(q, 0, logits)])
                                 [q.outputs[0]]).astype(np.float64)
    want = _FaceScore()(torch.from_numpy(logits)).numpy().astype(np.float64)
    sqnr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
    assert sqnr > 35.0
    lo, _ = calibrate(g, [logits], method)[g.inputs[0]]
    assert lo <= logits.max(axis=1).min()
