"""Pipeline decisions: graph outputs are not clipped by the range search; candidates are ranked
by their worst output."""
import numpy as np
import torch
import torch.nn as nn

from edgeq import interpreter
from edgeq.calibration import calibrate
from edgeq.metrics import sqnr_db
from edgeq.pipeline import float_graph, quantize_model, quantized_graph, unclipped_outputs


def _model_and_heavy_tailed_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    x = np.random.default_rng(0).standard_t(2, size=(512, 8)).astype(np.float32)  # rare large logits
    return model, x


def test_percentile_clips_the_logits_but_the_pipeline_keeps_their_observed_range():
    model, x = _model_and_heavy_tailed_data()
    g = float_graph(model, [(8,)])
    out = g.outputs[0]
    ranges = calibrate(g, [x], method="percentile", percentile=99.0)
    lo, hi = ranges.observed[out]
    assert ranges[out][1] < hi or ranges[out][0] > lo          # the search does clip this tail
    kept = unclipped_outputs(g, ranges)
    assert kept[out] == (lo, hi)
    inner = next(t for t in ranges if t not in g.outputs and t not in g.inputs)
    assert kept[inner] == ranges[inner]                        # other tensors keep the chosen range
    q = quantized_graph(g, [x], method="percentile", percentile=99.0, options={"equalization": False, "bias_correction": False})
    scale, zp = q.t(q.outputs[0]).quant.scalar()
    assert (127 - zp) * scale >= hi - scale and (-128 - zp) * scale <= lo + scale   # zero point rounding: < 1 step
    clipped = quantized_graph(g, [x], method="percentile", percentile=99.0, options={"equalization": False, "bias_correction": False,
                                                             "clip_outputs": True})
    s2, zp2 = clipped.t(clipped.outputs[0]).quant.scalar()
    assert (127 - zp2) * s2 < hi or (-128 - zp2) * s2 > lo


def test_an_output_reshaped_from_the_last_layer_keeps_the_layers_observed_range():
    """A landmark head's view(-1, 5, 2): the reshape carries the linear's quantization, so the
    linear's range must be the unclipped one (it was the percentile's before)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 10), nn.Unflatten(1, (5, 2))).eval()
    x = np.random.default_rng(0).standard_t(2, size=(512, 8)).astype(np.float32)
    g = float_graph(model, [(8,)])
    last = g.producer(g.outputs[0])
    assert last.op == "reshape"
    ranges = calibrate(g, [x], method="percentile", percentile=99.0)
    src = last.inputs[0]
    assert ranges[src] != ranges.observed[src]                  # the search clips the linear's tail
    assert unclipped_outputs(g, ranges)[src] == ranges.observed[src]
    q = quantized_graph(g, [x], method="percentile", percentile=99.0,
                        options={"equalization": False, "bias_correction": False})
    scale, zp = q.t(q.outputs[0]).quant.scalar()
    lo, hi = ranges.observed[src]
    assert (127 - zp) * scale >= hi - scale and (-128 - zp) * scale <= lo + scale


class _SharedTrunkHeads(nn.Module):
    """A shared hidden layer read by ``n_bulk`` heads on its Gaussian channels and one head on
    channel 0, which carries the input's heavy tail (like a detector's box head reading rare,
    large features that its class head does not)."""

    def __init__(self, n_bulk: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Linear(16, 64)
        self.bulk = nn.ModuleList(nn.Linear(64, 4) for _ in range(n_bulk))
        self.tail = nn.Linear(64, 2)
        with torch.no_grad():
            self.trunk.weight[0] = 0.0
            self.trunk.weight[0, 0] = 1.0
            self.trunk.bias[0] = 0.0
            self.trunk.weight[1:, 0] = 0.0
            for head in self.bulk:
                head.weight[:, 0] = 0.0
            self.tail.weight.mul_(0.05)
            self.tail.weight[:, 0] = torch.tensor([1.0, -0.7])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = self.trunk(x)
        return (*[head(h) for head in self.bulk], self.tail(h))


def _tail_data(n: int, seed: int, dof: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    x[:, 0] = rng.standard_t(dof, n)
    return x


def _held_out_sqnrs(model: nn.Module, cal: np.ndarray, ev: np.ndarray, **kw) -> list[float]:
    """Per-output SQNR (dB) on ``ev`` of the integer reference against torch float."""
    g = float_graph(model, [cal.shape[1:]])
    q = quantized_graph(g, [cal], **kw)
    with torch.no_grad():
        ref = [t.numpy() for t in model(torch.from_numpy(ev))]
    out = interpreter.run_int_chunked(q, [interpreter.quantize_input(q, 0, ev)])
    return [sqnr_db(r, interpreter.dequantize(q, o, out[o])) for r, o in zip(ref, q.outputs)]


def test_a_head_reading_a_shared_tensors_tail_keeps_it():
    """MSE clipping of the shared hidden tensor cuts the tail the second head reads; the build
    also tries near-minmax ranges (pipeline.WIDE) and keeps them: that head is as good as with
    minmax ranges, and 2 dB better than with the MSE ranges alone."""
    model = _SharedTrunkHeads(1).eval()
    cal, ev = _tail_data(512, 0, 3.0), _tail_data(512, 1, 3.0)
    default = _held_out_sqnrs(model, cal, ev)
    minmax = _held_out_sqnrs(model, cal, ev, method="minmax")
    mse_only = _held_out_sqnrs(model, cal, ev, options={"wide_ranges": False, "entropy_ranges": False})
    assert default[1] >= minmax[1] - 0.1
    assert default[1] >= mse_only[1] + 2.0
    assert min(default) >= min(mse_only) + 2.0


def test_candidates_are_ranked_by_their_worst_output():
    """Here the near-minmax ranges raise the tail head by 3.6 dB and lower the two bulk heads by
    0.4-0.5 dB: a higher mean, a worse worst output. The build keeps the MSE ranges, whose worst
    output (held out, against torch float) is the better one."""
    model = _SharedTrunkHeads(2).eval()
    cal, ev = _tail_data(512, 0, 2.5), _tail_data(512, 1, 2.5)
    default = _held_out_sqnrs(model, cal, ev)
    wide = _held_out_sqnrs(model, cal, ev, method="percentile", percentile=99.999)
    assert np.mean(wide) > np.mean(default) + 0.5          # what a mean over outputs would pick
    assert min(default) >= min(wide) + 0.25


def test_kl_ranges_are_a_candidate_of_multi_output_models_only():
    """The worst-output ranking of several heads also tries KL (entropy) ranges; one output does
    not by default (its scores name each candidate tried). Either way switchable."""
    cal = _tail_data(128, 0, 3.0)
    heads = _SharedTrunkHeads(1).eval()
    g2 = float_graph(heads, [cal.shape[1:]])
    tried = quantize_model(g2, [cal]).scores
    assert "sqnr_db_none_entropy" in tried and "sqnr_db_none_wide" in tried
    assert "sqnr_db_none_entropy" not in quantize_model(g2, [cal], options={"entropy_ranges": False}).scores
    single = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    g1 = float_graph(single, [cal.shape[1:]])
    assert "sqnr_db_none_entropy" not in quantize_model(g1, [cal]).scores
    assert "sqnr_db_none_entropy" in quantize_model(g1, [cal], options={"entropy_ranges": True}).scores
    # the method's own ranges are not tried twice
    assert "sqnr_db_none_entropy" not in quantize_model(g2, [cal], method="entropy").scores
