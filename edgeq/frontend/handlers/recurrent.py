"""Handlers of nn.LSTM and nn.GRU (``aten.lstm.input`` / ``aten.gru.input``, kept whole by the
tracer's decomposition table): each layer (and direction) becomes one ``scan`` over the sequence.

A layer's input projections (W_i* x + b) run once over the whole sequence before the loop;
the step body holds the hidden projections and the gate arithmetic. GRU gates are r, z, n; LSTM
gates are i, f, g, o (torch's order). The hidden bias is folded into the input projection
wherever it is only added (all LSTM gates, GRU's r and z)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...ir import Graph, Node, Tensor
from ..tracer import Tracer, aten, handles, module_path, unsupported


@dataclass
class _Body:
    """A step graph under construction; tensor names carry the scan's prefix (unique in the model)."""
    prefix: str
    module: str
    graph: Graph = field(default_factory=Graph)

    def input(self, name: str, shape: tuple[int, ...]) -> str:
        t = self.graph.add_tensor(Tensor(f"{self.prefix}.{name}", shape))
        self.graph.inputs.append(t.name)
        return t.name

    def const(self, name: str, data: np.ndarray) -> str:
        return self.graph.add_constant(f"{self.prefix}.{name}", np.ascontiguousarray(data, dtype=np.float32)).name

    def node(self, op: str, inputs: list[str], name: str, shape: tuple[int, ...]) -> str:
        out = self.graph.add_tensor(Tensor(self.graph.unique_name(f"{self.prefix}.{name}"), shape)).name
        self.graph.nodes.append(Node(op, inputs, [out], {}, out, self.module))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str, batch_shape: tuple[int, ...]) -> str:
        return self.node("linear", [x, self.const(f"{name}_weight", w), self.const(f"{name}_bias", b)], name,
                         (*batch_shape, w.shape[0]))


def _params(t: Tracer, fx: torch.fx.Node, params: list, has_biases: bool, layer: int) -> tuple[np.ndarray, ...]:
    per = 4 if has_biases else 2
    arrays = [t.const_array(p) for p in params[layer * per:(layer + 1) * per]]
    w_ih, w_hh = arrays[:2]
    gates = w_ih.shape[0]
    b_ih, b_hh = (arrays[2], arrays[3]) if has_biases else (np.zeros(gates, np.float32), np.zeros(gates, np.float32))
    return w_ih, w_hh, b_ih, b_hh


def _initial_state(t: Tracer, fx: torch.fx.Node, hx: torch.fx.Node, layer: int, hidden: int) -> str:
    """Layer ``layer``'s initial state, (1, H): a constant (zeros, usually) or a slice of the
    (layers, batch, H) state input."""
    if t.is_const(hx):
        return t.constant(f"{fx.name}_h0_{layer}", t.const_array(hx)[layer].reshape(1, hidden))
    ir = t.ir_shape(hx)
    axis = t.ir_dim(fx, hx, 0)
    begin, end = [0] * len(ir), list(ir)
    begin[axis], end[axis] = layer, layer + 1
    piece = t.intermediate(fx, "slice", [t.tensor(hx)], f"h0_{layer}_slice",
                           {"begin": begin, "end": end, "strides": [1] * len(ir)},
                           shape=tuple(1 if d == axis else s for d, s in enumerate(ir)))
    return t.reshaped(piece, (1, hidden), fx, f"h0_{layer}")


def _projection(t: Tracer, fx: torch.fx.Node, seq: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
    """One gate's input projection over the whole sequence (N, T, F) -> (N, T, H)."""
    steps = t.graph.t(seq).shape[1]
    wname = t.constant(f"{fx.name}_{name}_weight", w)
    bname = t.constant(f"{fx.name}_{name}_bias", b)
    return t.intermediate(fx, "linear", [seq, wname, bname], name, shape=(1, steps, w.shape[0]))


def _gru_body(body: _Body, hidden: int, w_hh: np.ndarray, b_hh: np.ndarray) -> None:
    H, s = hidden, (1, hidden)
    xr, xz, xn, h = (body.input(n, s) for n in ("x_r", "x_z", "x_n", "h"))
    zero = np.zeros(H, np.float32)
    r = body.node("sigmoid", [body.node("add", [xr, body.linear(h, w_hh[:H], zero, "h_r", (1,))], "pre_r", s)], "r", s)
    z = body.node("sigmoid", [body.node("add", [xz, body.linear(h, w_hh[H:2 * H], zero, "h_z", (1,))], "pre_z", s)],
                  "z", s)
    hn = body.linear(h, w_hh[2 * H:], b_hh[2 * H:], "h_n", (1,))
    n = body.node("tanh", [body.node("add", [xn, body.node("mul", [r, hn], "r_h_n", s)], "pre_n", s)], "n", s)
    # h' = (1 - z) n + z h = n + z (h - n)
    new = body.node("add", [n, body.node("mul", [z, body.node("sub", [h, n], "h_minus_n", s)], "z_step", s)], "h_new", s)
    body.graph.outputs.append(new)


def _lstm_body(body: _Body, hidden: int, w_hh: np.ndarray) -> None:
    H, s = hidden, (1, hidden)
    xi, xf, xg, xo, h, c = (body.input(n, s) for n in ("x_i", "x_f", "x_g", "x_o", "h", "c"))
    zero = np.zeros(H, np.float32)

    def gate(x: str, k: int, act: str, name: str) -> str:
        pre = body.node("add", [x, body.linear(h, w_hh[k * H:(k + 1) * H], zero, f"h_{name}", (1,))], f"pre_{name}", s)
        return body.node(act, [pre], name, s)

    i, f, g, o = gate(xi, 0, "sigmoid", "i"), gate(xf, 1, "sigmoid", "f"), gate(xg, 2, "tanh", "g"), gate(xo, 3, "sigmoid", "o")
    c_new = body.node("add", [body.node("mul", [f, c], "f_c", s), body.node("mul", [i, g], "i_g", s)], "c_new", s)
    h_new = body.node("mul", [o, body.node("tanh", [c_new], "tanh_c", s)], "h_new", s)
    body.graph.outputs.extend([h_new, c_new])


def _reversed_in_time(t: Tracer, fx: torch.fx.Node, seq: str, what: str) -> str:
    """(1, T, F) with its steps in reverse order: a gather along the time axis (exact)."""
    shape = t.graph.t(seq).shape
    order = t.constant(f"{fx.name}_time_reversed", np.arange(shape[1] - 1, -1, -1, dtype=np.int64))
    return t.intermediate(fx, "gather", [seq, order], what, {"axis": 1}, shape=shape)


def _direction(t: Tracer, fx: torch.fx.Node, kind: str, seq: str, params: tuple[np.ndarray, ...],
               initial: list[str], tag: str) -> tuple[list[str], str]:
    """One layer in one direction as a ``scan`` over ``seq`` (1, T, F): its final states
    (1, H) each and its stacked hidden states (1, T, H)."""
    w_ih, w_hh, b_ih, b_hh = params
    hidden, gates = w_hh.shape[1], (4 if kind == "lstm" else 3)
    folded = b_ih + b_hh if kind == "lstm" else np.concatenate([b_ih[:2 * hidden] + b_hh[:2 * hidden],
                                                               b_ih[2 * hidden:]])
    names = "ifgo" if kind == "lstm" else "rzn"
    projections = [_projection(t, fx, seq, w_ih[k * hidden:(k + 1) * hidden], folded[k * hidden:(k + 1) * hidden],
                               f"{tag}_x_{names[k]}") for k in range(gates)]
    body = _Body(f"{fx.name}.{tag}", module_path(fx))
    if kind == "lstm":
        _lstm_body(body, hidden, w_hh)
    else:
        _gru_body(body, hidden, w_hh, b_hh)
    steps = t.graph.t(seq).shape[1]
    outs = [t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_{tag}_{n}"), (1, hidden))).name
            for n in (["h", "c"] if kind == "lstm" else ["h"])]
    seq_out = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_{tag}_seq"), (1, steps, hidden))).name
    t.graph.nodes.append(Node("scan", [*projections, *initial], [*outs, seq_out],
                              {"body": body.graph, "steps": steps, "sequences": gates, "stacked": [0]},
                              f"{fx.name}_{tag}", module_path(fx)))
    return outs, seq_out


def _recurrent(t: Tracer, fx: torch.fx.Node, kind: str) -> None:
    """Each layer (and direction) a scan. A bidirectional layer's backward direction is a scan
    over the time-reversed sequence whose outputs are reversed back; the two directions'
    outputs are concatenated on the feature axis (torch's order: forward, then backward)."""
    x, hx, params, has_biases, layers, _dropout, _train, bidirectional, batch_first = fx.args[:9]
    directions = 2 if bidirectional else 1
    states = list(hx) if kind == "lstm" else [hx]
    seq = t.tensor(x)
    if len(t.graph.t(seq).shape) != 3:
        raise unsupported(fx, f"an unbatched {kind.upper()} input")
    batch = int(x.meta["val"].shape[0 if batch_first else 1])
    if batch != 1:      # traced at batch 1: the RNN's batch axis must be the input's first
        raise unsupported(fx, f"an {kind.upper()} whose batch axis ({0 if batch_first else 1}, "
                              f"{'batch_first' if batch_first else 'batch_first=False'}) has {batch} rows when edgeq "
                              "traces one sample (edgeq's batch is axis 0 of each input: use batch_first=True, "
                              "or feed (time, 1, features) samples")
    finals: list[list[str]] = []            # per (layer, direction), in torch's h_n order
    for layer in range(int(layers)):
        outputs = []
        for d in range(directions):
            index = layer * directions + d
            weights = _params(t, fx, list(params), bool(has_biases), index)
            hidden = weights[1].shape[1]
            initial = [_initial_state(t, fx, s, index, hidden) for s in states]
            tag = f"l{layer}" + ("_reverse" if d else "")
            source = _reversed_in_time(t, fx, seq, f"{tag}_input") if d else seq
            outs, seq_out = _direction(t, fx, kind, source, weights, initial, tag)
            finals.append(outs)
            outputs.append(_reversed_in_time(t, fx, seq_out, f"{tag}_seq_in_time") if d else seq_out)
        if directions == 1:
            seq = outputs[0]
        else:
            steps = t.graph.t(outputs[0]).shape[1]
            width = sum(t.graph.t(o).shape[2] for o in outputs)
            seq = t.intermediate(fx, "concat", outputs, f"l{layer}_both_directions", {"axis": 2},
                                 shape=(1, steps, width))
    b_out = 0 if batch_first else 1
    results = [(seq, b_out)]
    for k in range(len(states)):            # h_n (and c_n): (layers * directions, batch, H), batch axis 1
        per_layer = [t.reshaped(f[k], (1, 1, t.graph.t(f[k]).shape[1]), fx, "state") for f in finals]
        stacked = per_layer[0] if len(per_layer) == 1 else t.intermediate(
            fx, "concat", per_layer, f"state{k}", {"axis": 1}, shape=(1, len(per_layer), t.graph.t(finals[0][k]).shape[1]))
        results.append((stacked, 1))
    t.tuples[fx.name] = results


@handles(aten.gru.input)
def _gru(t: Tracer, fx: torch.fx.Node) -> None:
    _recurrent(t, fx, "gru")


@handles(aten.lstm.input)
def _lstm(t: Tracer, fx: torch.fx.Node) -> None:
    _recurrent(t, fx, "lstm")
