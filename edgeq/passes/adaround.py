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
give the same integers, unless the time budget cut a layer short (that depends on the clock:
``LayerRounding.cut_short``)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .. import interpreter
from ..ir import Graph, Node
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
ASYMMETRIC = True


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
    cut_short: bool             # the time budget stopped it before ``ITERATIONS``
    kept: bool                  # the learned rounding was better than nearest and is used

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
    ``sample`` (float inputs), and a row per layer. ``budget_s`` is shared by the layers in
    proportion to their multiply-accumulates."""
    q = qgraph.copy()
    fnodes = {n.name: n for n in fgraph.nodes}
    layers = [n for n in q.nodes if n.name in fnodes and learnable(n, q)]
    fvalues = interpreter.run(fgraph, sample, keep={fnodes[n.name].inputs[0] for n in layers})
    cost = {n.name: max(1, get_op(n.op).macs(n, q)) for n in layers}
    left = sum(cost.values())
    deadline = time.perf_counter() + budget_s
    rows: list[LayerRounding] = []
    qvalues = {name: interpreter.quantize_input(q, i, x) for i, (name, x) in enumerate(zip(q.inputs, sample))}
    refcount = _refcounts(q)
    for node in q.nodes:
        if node in layers:
            share = max(0.0, deadline - time.perf_counter()) * cost[node.name] / left
            left -= cost[node.name]
            x_q = interpreter.dequantize(q, node.inputs[0], qvalues[node.inputs[0]])
            rows.append(_round_layer(node, q, fnodes[node.name], fgraph, x_q, fvalues[fnodes[node.name].inputs[0]],
                                     share, iterations, seed))
        args = [qvalues[n] if n in qvalues else q.t(n).data for n in node.inputs]
        qvalues.update(zip(node.outputs, get_op(node.op).run(node, q, args)))
        for n in node.inputs:
            refcount[n] = refcount.get(n, 1) - 1
            if refcount[n] <= 0 and n not in q.outputs:
                qvalues.pop(n, None)
    q.prune()
    q.share_identical_constants()
    return q, rows


def _refcounts(graph: Graph) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.nodes:
        for n in node.inputs:
            counts[n] = counts.get(n, 0) + 1
    return counts


def _round_layer(node: Node, q: Graph, fnode: Node, fgraph: Graph, x_q: np.ndarray, x_f: np.ndarray,
                 budget_s: float, iterations: int, seed: int) -> LayerRounding:
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
    plain = Node(node.op, node.inputs, node.outputs, dict(node.attrs), node.name)

    def forward(x: torch.Tensor, ints: torch.Tensor) -> torch.Tensor:
        return op.weighted_torch(plain, q, x, ints * s_t, b_t)

    s_t = torch.from_numpy(scale.astype(np.float32))
    b_t = torch.from_numpy(fgraph.t(fnode.inputs[2]).data.astype(np.float32))
    xq_t = torch.from_numpy(np.ascontiguousarray(x_q, dtype=np.float32))
    with torch.no_grad():
        x_t = xq_t if not ASYMMETRIC else torch.from_numpy(np.ascontiguousarray(x_f, dtype=np.float32))
        target = op.weighted_torch(plain, q, x_t, torch.from_numpy(w_f.astype(np.float32)), b_t)
    power = float(target.double().pow(2).sum()) or 1.0

    def error(ints: np.ndarray) -> float:
        with torch.no_grad():
            y = forward(xq_t, torch.from_numpy(ints.astype(np.float32)))
        return float((y.double() - target.double()).pow(2).sum()) / power

    err_nearest = error(nearest)
    v, done, cut = _optimise(forward, xq_t, target, floor, rest, err_nearest * power / target.numel(),
                             budget_s, iterations, seed)
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
                         float(np.mean(final != nearest)), done, time.perf_counter() - start, cut, kept)


def _broadcast_scale(quant: object, ndim: int) -> np.ndarray:
    s = np.asarray(quant.scale).astype(np.float64)
    if not quant.per_channel:
        return s.reshape((1,) * ndim)
    shape = [1] * ndim
    shape[quant.axis] = -1
    return s.reshape(shape)


def _optimise(forward: object, x: torch.Tensor, target: torch.Tensor, floor: np.ndarray, rest: np.ndarray,
              mse_nearest: float, budget_s: float, iterations: int, seed: int) -> tuple[np.ndarray, int, bool]:
    """Adam on V; returns V, the iterations run and whether the budget cut them short. The
    plan is shortened (annealing included) once the first steps show what fits the budget."""
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    p = (np.clip(rest, 1e-6, 1 - 1e-6) - GAMMA) / (ZETA - GAMMA)       # h(V) = rest at the start
    v = torch.tensor(np.log(p / (1 - p)), dtype=torch.float32, requires_grad=True)
    floor_t = torch.from_numpy(floor.astype(np.float32))
    opt = torch.optim.Adam([v], lr=LEARNING_RATE)
    n = x.shape[0]
    plan, done = iterations, 0
    scale_err = 1.0 / max(mse_nearest, 1e-30)       # the error relative to nearest's
    while done < plan:
        idx = torch.randperm(n, generator=gen)[:BATCH] if n > BATCH else slice(None)
        h = (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)
        loss = (forward(x[idx], floor_t + h) - target[idx]).pow(2).mean() * scale_err
        frac = done / plan
        if frac >= WARMUP:
            beta = BETA[1] + (BETA[0] - BETA[1]) * (1 - (frac - WARMUP) / (1 - WARMUP))
            loss = loss + REGULARIZATION * (1 - (2 * h - 1).abs().pow(beta)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
        if done == 10:
            per_step = (time.perf_counter() - start) / done
            plan = max(done, min(plan, int(budget_s / per_step)))
    return v.detach().numpy(), done, plan < iterations
