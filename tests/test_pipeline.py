"""Pipeline decisions: graph outputs are not clipped by the range search."""
import numpy as np
import torch
import torch.nn as nn

from edgeq.calibration import calibrate
from edgeq.pipeline import float_graph, quantized_graph, unclipped_outputs


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
