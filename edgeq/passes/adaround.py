"""Learned rounding of int8 weights (AdaRound, Nagel et al., 2020) on a quantized graph.

Rounding each weight to nearest minimises the weight's own error, not the layer's output error.
AdaRound keeps the weight scales and picks, per weight, floor or ceil of w / s: a soft choice
h(V) = clip(sigmoid(V) * (ZETA - GAMMA) + GAMMA, 0, 1) is trained by Adam to reconstruct the
layer's float output, with a regulariser that pushes every h to 0 or 1 (its exponent beta
annealed from 20 to 2), then fixed at V >= 0.

Layers are done in graph order. A layer's inputs are the integer reference's values on the graph
with the layers before it already rounded (dequantized); its target is the float graph's output
on float inputs (the asymmetric reconstruction of the paper: the rounding may also make up for
error already in its input), fused clamp included. The learned rounding is kept only where its
reconstruction error on the whole sample is below nearest's; so no layer gets worse on it.

The result is the graph's int8 weight tensors themselves: every target writes them and the
reference interpreter runs them as any other weights. Seeded and one-threaded, the same inputs
give the same integers: the time budget is met by planning, not by the clock. Each Adam step's
time is estimated from the layer's multiply-accumulates (``step_estimate_s``); when the full
schedule of every layer does not fit, every layer runs the same shorter one (``cut_short``).
Only a build running past ``HARD_STOP`` times its budget (a machine far slower than the
estimate) stops the remaining layers by the clock (``stopped_by_clock``: not reproducible)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from .. import interpreter
from ..ir import Graph, Node, QuantParams
from ..ops import get_op
from ..ops.base import OpDef
from ..quant import WEIGHT_MAX

ZETA, GAMMA = 1.1, -0.1       # the stretch of the rectified sigmoid (the paper's values)
REGULARIZATION = 0.1          # weight of the push towards 0 / 1, against the relative error
BETA = (20.0, 2.0)            # the regulariser's exponent, annealed from the first to the second
WARMUP = 0.2                  # share of the iterations without the regulariser
ITERATIONS = 1000
BATCH = 32                    # samples per Adam step
LEARNING_RATE = 1e-2
SEED = 0
DEFAULT_BUDGET_S = 60.0
MIN_ITERATIONS = 50
#: an Adam step's time: a fixed part and a part per multiply-accumulate of the batch (forward and
#: backward), measured on one shared x86 core (issue 17: 8-75 ms per step on the MLPerf shapes)
STEP_OVERHEAD_S = 8e-3
STEP_S_PER_MAC = 5e-9
HARD_STOP = 3.0


@dataclass
class LayerRounding:
    """One layer's learned rounding, as the report shows it. Errors are relative:
    ||y_float - y||^2 / ||y_float||^2 on the whole sample."""
    layer: str
    op: str
    weights: int
    error_nearest: float
    error_learned: float        # the error of the rounding kept (nearest's when that was not better)
    up_nearest: float           # share of weights rounded up (ceil of w / s) by nearest rounding
    up_learned: float           # ... by the rounding kept
    changed: float              # share of weights whose integer differs from nearest
    iterations: int
    time_s: float
    cut_short: bool             # the budget's plan gave it fewer than ``ITERATIONS`` steps
    kept: bool                  # the learned rounding was better than nearest and is used
    stopped_by_clock: bool = False   # past HARD_STOP x the budget: stopped early, not reproducible

    def row(self) -> dict:
        return asdict(self)


def learnable(node: Node, graph: Graph) -> bool:
    """A weighted layer with int8 weights whose float forward exists in torch."""
    op = get_op(node.op)
    return op.weighted and graph.layout == "nchw" and graph.t(node.inputs[1]).dtype == "int8" and \
        type(op).weighted_torch is not OpDef.weighted_torch


def learn_rounding(fgraph: Graph, qgraph: Graph, sample: list[np.ndarray], budget_s: float = DEFAULT_BUDGET_S,
                   iterations: int = ITERATIONS, seed: int = SEED) -> tuple[Graph, list[LayerRounding]]:
    """A copy of ``qgraph`` with the weights of every learnable layer rounded by AdaRound on
    ``sample`` (float inputs), and a row per layer. ``budget_s``: the estimated time of all
    layers together (see the module docstring)."""
    q = qgraph.copy()
    fnodes = {n.name: n for n in fgraph.nodes}
    layers = [n for n in q.nodes if n.name in fnodes and learnable(n, q)]
    fvalues = interpreter.run(fgraph, sample, keep={fnodes[n.name].inputs[0] for n in layers})
    batch = min(BATCH, sample[0].shape[0])
    full = sum(step_estimate_s(n, q, batch) for n in layers) * iterations
    plan = iterations if full <= budget_s else max(MIN_ITERATIONS, int(iterations * budget_s / full))
    deadline = time.perf_counter() + HARD_STOP * max(budget_s, full * plan / iterations)
    rows: list[LayerRounding] = []
    qvalues = {name: interpreter.quantize_input(q, i, x) for i, (name, x) in enumerate(zip(q.inputs, sample))}
    refcount = q.use_counts()
    for node in q.nodes:
        if node in layers:
            x_q = interpreter.dequantize(q, node.inputs[0], qvalues[node.inputs[0]])
            row = _round_layer(node, q, fnodes[node.name], fgraph, x_q, fvalues[fnodes[node.name].inputs[0]],
                               plan, deadline, seed)
            row.cut_short = plan < iterations
            rows.append(row)
        args = [qvalues[n] if n in qvalues else q.t(n).data for n in node.inputs]
        qvalues.update(zip(node.outputs, get_op(node.op).run(node, q, args)))
        for n in node.inputs:
            refcount[n] = refcount.get(n, 1) - 1
            if refcount[n] <= 0 and n not in q.outputs:
                qvalues.pop(n, None)
    q.prune()
    q.share_identical_constants()
    return q, rows


def step_estimate_s(node: Node, graph: Graph, batch: int) -> float:
    """The estimated time of one Adam step of ``node`` on ``batch`` samples."""
    return STEP_OVERHEAD_S + STEP_S_PER_MAC * get_op(node.op).macs(node, graph) * batch


def _round_layer(node: Node, q: Graph, fnode: Node, fgraph: Graph, x_q: np.ndarray, x_f: np.ndarray,
                 iterations: int, deadline: float, seed: int) -> LayerRounding:
    """Learn the rounding of one layer and write the kept integers into ``q`` (a new tensor:
    identical weights of two layers may share one)."""
    start = time.perf_counter()
    op = get_op(node.op)
    wt = q.t(node.inputs[1])
    w_f = fgraph.t(fnode.inputs[1]).data
    scale = _broadcast_scale(wt.quant, w_f.ndim)
    # the division symmetric_weight_quant rounds: float64 weights over the float32 scale
    floor = np.floor(w_f.astype(np.float64) / scale)
    rest = w_f.astype(np.float64) / scale - floor
    nearest = wt.data.astype(np.float64)

    def forward(x: torch.Tensor, ints: torch.Tensor) -> torch.Tensor:
        return op.weighted_torch(node, q, x, ints * s_t, b_t)

    s_t = torch.from_numpy(scale.astype(np.float32))
    b_t = torch.from_numpy(fgraph.t(fnode.inputs[2]).data.astype(np.float32))
    xq_t = torch.from_numpy(np.ascontiguousarray(x_q, dtype=np.float32))
    with torch.no_grad():
        target = op.weighted_torch(node, q, torch.from_numpy(np.ascontiguousarray(x_f, dtype=np.float32)),
                                   torch.from_numpy(w_f.astype(np.float32)), b_t)
    power = float(target.double().pow(2).sum()) or 1.0

    def error(ints: np.ndarray) -> float:
        with torch.no_grad():
            y = forward(xq_t, torch.from_numpy(ints.astype(np.float32)))
        return float((y.double() - target.double()).pow(2).sum()) / power

    err_nearest = error(nearest)
    v, done = _optimise(forward, xq_t, target, floor, rest, err_nearest * power / target.numel(),
                        iterations, deadline, seed)
    learned = np.clip(floor + (v >= 0), -WEIGHT_MAX, WEIGHT_MAX)
    err_learned = error(learned)
    kept = err_learned < err_nearest
    final = learned if kept else nearest
    if kept:
        new = q.add_constant(f"{wt.name}_adaround", final.astype(np.int8))
        new.quant = wt.quant
        node.inputs[1] = new.name
    return LayerRounding(node.name, node.op, int(final.size), err_nearest, err_learned if kept else err_nearest,
                         float(np.mean(nearest > floor)), float(np.mean(final > floor)),
                         float(np.mean(final != nearest)), done, time.perf_counter() - start, False, kept,
                         done < iterations)


def _broadcast_scale(quant: QuantParams, ndim: int) -> np.ndarray:
    s = np.asarray(quant.scale).astype(np.float64)
    if not quant.per_channel:
        return s.reshape((1,) * ndim)
    shape = [1] * ndim
    shape[quant.axis] = -1
    return s.reshape(shape)


def _optimise(forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, target: torch.Tensor,
              floor: np.ndarray, rest: np.ndarray, mse_nearest: float, iterations: int, deadline: float,
              seed: int) -> tuple[np.ndarray, int]:
    """Adam on V for ``iterations`` steps (fewer only past ``deadline``); returns V and the
    steps run."""
    gen = torch.Generator().manual_seed(seed)
    p = (np.clip(rest, 1e-6, 1 - 1e-6) - GAMMA) / (ZETA - GAMMA)       # h(V) = rest at the start
    v = torch.tensor(np.log(p / (1 - p)), dtype=torch.float32, requires_grad=True)
    floor_t = torch.from_numpy(floor.astype(np.float32))
    opt = torch.optim.Adam([v], lr=LEARNING_RATE)
    n = x.shape[0]
    scale_err = 1.0 / max(mse_nearest, 1e-30)       # the error relative to nearest's
    done = 0
    while done < iterations and time.perf_counter() < deadline:
        idx = torch.randperm(n, generator=gen)[:BATCH] if n > BATCH else slice(None)
        h = (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)
        loss = (forward(x[idx], floor_t + h) - target[idx]).pow(2).mean() * scale_err
        frac = done / iterations
        if frac >= WARMUP:
            beta = BETA[1] + (BETA[0] - BETA[1]) * (1 - (frac - WARMUP) / (1 - WARMUP))
            loss = loss + REGULARIZATION * (1 - (2 * h - 1).abs().pow(beta)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
    return v.detach().numpy(), done
