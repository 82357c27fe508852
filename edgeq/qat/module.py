"""The QAT module: a torch ``nn.Module`` whose forward pass computes, in torch, exactly the
integers of the quantized graph edgeq deploys, dequantized at the outputs.

State: the quantized (NCHW) graph the pipeline produced, and for each weighted node its float
weight and bias as ``nn.Parameter`` (batch norm already folded, cross-layer equalization
applied, as the pipeline decided). Whenever a parameter changes, its node is quantized again by
the op's own ``quantize()`` (per-channel int8 weights, int32/int64 bias, multipliers and shifts
from the float32 scales), so the integers always follow edgeq's rules; a bias correction the
pipeline made is kept as a fixed integer offset of that bias.

Forward: every node runs its QAT kernel (``kernel.get_kernel``) twice: on integers
(``int_forward``, no gradient) and on floats (``float_forward``, the straight-through surrogate:
dequantized inputs, fake-quantized weights). The node's float output is
``y_sim + (dequantize(y_int) - y_sim).detach()``: its value is the integer result, its gradient
the surrogate's, zero where the output saturates. Activation scales stay as calibrated, or
(``learn_scales``) are parameters trained by LSQ's gradient (``edgeq.qat.scales``): every
change re-derives the integer parameters of every node from them.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import EdgeqError
from ..ir import Graph, Node, Tensor
from ..ops import get_op
from ..pipeline import Prequantized, Quantization
from ..quant import dequantize_constant, dtype_range, quantize_bias
from . import elementwise, movement, weighted  # noqa: F401  (fill the kernel registry)
from . import scales as sc
from . import tintmath as tm
from .kernel import QatKernel, get_kernel, long


class QATModule(nn.Module):
    """See the module docstring. Built by ``edgeq.qat.prepare``; build it with ``edgeq.build``."""

    def __init__(self, result: Quantization, options: dict, input_rounding: str, label: str,
                 learn_scales: bool = False) -> None:
        super().__init__()
        self.result = result
        self.options = dict(options)
        self.input_rounding = input_rounding
        self.label = label
        self.graph = _unshared(result.graph)
        self._shared = {n.name: list(n.inputs) for n in result.graph.nodes}
        self._check_inputs()
        self._kernels: dict[str, QatKernel] = {n.name: get_kernel(n, self.graph) for n in self.graph.nodes}
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self._slot: dict[str, int] = {}
        self._offset: dict[str, np.ndarray] = {}
        self._synced: dict[str, tuple] = {}
        self.scales = nn.ParameterList()
        self._scale_slot: dict[str, int] = {}
        self._follows: dict[str, str] = {}
        self._scales_synced: tuple | None = None
        if learn_scales:
            self._add_scales()
        floats = {n.name: n for n in result.quantized_float_graph.nodes}
        for node in self.graph.nodes:
            if get_op(node.op).weighted:
                self._add_weighted(node, floats.get(node.name), result.quantized_float_graph)
        self.sync()
        if not _same_graph(self.quantized_graph(), result.graph):
            raise EdgeqError("internal error: the QAT module's integers differ from the quantized graph's")

    # -- parameters ------------------------------------------------------------------------
    def _add_weighted(self, node: Node, fnode: Node | None, fgraph: Graph) -> None:
        if fnode is None or fnode.op != node.op:
            raise EdgeqError(f"internal error: no float node for {node.where()}")
        w = fgraph.t(fnode.inputs[1]).data.astype(np.float32)
        b = fgraph.t(fnode.inputs[2]).data.astype(np.float32)
        self._slot[node.name] = len(self.weights)
        self.weights.append(nn.Parameter(torch.from_numpy(w.copy())))
        self.biases.append(nn.Parameter(torch.from_numpy(b.copy())))
        bias_int = self.graph.t(node.inputs[2]).data
        s_in = float(self.graph.t(node.inputs[0]).quant.scale[0])
        plain, _ = quantize_bias(b, s_in, _weight_scales(node, self.graph, w, self.options),
                                 wide=bias_int.dtype == np.int64)
        self._offset[node.name] = bias_int.astype(np.int64) - plain.astype(np.int64)   # a bias correction

    def _add_scales(self) -> None:
        learn, self._follows = sc.learnable_tensors(self.graph)
        for name in learn:
            self._scale_slot[name] = len(self.scales)
            self.scales.append(nn.Parameter(torch.tensor(float(self.graph.t(name).quant.scale[0]), dtype=torch.float32)))

    def scale_parameters(self) -> list[nn.Parameter]:
        """The learnable activation scales (empty unless prepared with ``learn_scales=True``)."""
        return list(self.scales)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The float weights and biases of the weighted nodes."""
        return [*self.weights, *self.biases]

    def parameters_of(self, node_name: str) -> tuple[nn.Parameter, nn.Parameter]:
        """The float (weight, bias) parameters of a weighted node."""
        k = self._slot[node_name]
        return self.weights[k], self.biases[k]

    def sync(self) -> None:
        """Quantize again every weighted node whose parameters changed since the last call
        (every node, when a learned scale changed)."""
        if self._scales_synced != self._scale_key():
            self._sync_scales()
        for name, k in self._slot.items():
            key = self._weight_key(k)
            if self._synced.get(name) != key:
                self._requantize(next(n for n in self.graph.nodes if n.name == name), k)
                self._synced[name] = key

    def _weight_key(self, k: int) -> tuple:
        return tuple((p._version, p.data_ptr()) for p in (self.weights[k], self.biases[k]))

    def _scale_key(self) -> tuple | None:
        if not self._scale_slot:
            return None
        with torch.no_grad():      # a step past zero: the smallest positive scale the quantizer makes
            for p in self.scales:
                if not bool(p > sc.MIN_SCALE):
                    p.clamp_(min=sc.MIN_SCALE)
        return tuple((p._version, p.data_ptr()) for p in self.scales)

    def _sync_scales(self) -> None:
        """The learned scales into the graph's tensors, then every node's integers from them."""
        values = {name: float(self.scales[k].detach().item()) for name, k in self._scale_slot.items()}
        sc.write_scales(self.graph, values, self._follows)
        for node in self.graph.nodes:
            if node.name in self._slot:
                self._requantize(node, self._slot[node.name])
                self._synced[node.name] = self._weight_key(self._slot[node.name])
            else:
                get_op(node.op).quantize(node, self.graph, self.options)
        self._scales_synced = self._scale_key()

    def _requantize(self, node: Node, k: int) -> None:
        g = self.graph
        w, b = g.t(node.inputs[1]), g.t(node.inputs[2])
        for t, p in ((w, self.weights[k]), (b, self.biases[k])):
            t.data, t.quant, t.dtype = p.detach().numpy().astype(np.float32).copy(), None, "float32"
        get_op(node.op).quantize(node, g, self.options)
        lo, hi = dtype_range(str(b.data.dtype))
        b.data = np.clip(b.data.astype(np.int64) + self._offset[node.name], lo, hi).astype(b.data.dtype)

    # -- the integer graph -----------------------------------------------------------------
    def quantized_graph(self) -> Graph:
        """The quantized graph of the current parameters (what a build emits)."""
        self.sync()
        g = self.graph.copy()
        for node in g.nodes:       # the pipeline's tensor sharing, where the integers still agree
            for k, name in enumerate(self._shared[node.name]):
                if node.inputs[k] != name and _same_constant(g.t(node.inputs[k]), g.t(name)):
                    node.inputs[k] = name
        g.prune()
        return g

    def float_graph(self) -> Graph:
        """The float graph the integers come from, with the current weights (the report's
        per-layer comparison; a weight two nodes shared takes the later node's)."""
        g = self.result.quantized_float_graph.copy()
        for node in g.nodes:
            if node.name in self._slot:
                for name, p in zip(node.inputs[1:3], self.parameters_of(node.name)):
                    g.t(name).data = p.detach().numpy().astype(np.float32).copy()
        return g

    def quantization(self) -> Quantization:
        """The pipeline's result with the current integer graph and float weights."""
        return dataclasses.replace(self.result, graph=self.quantized_graph(), quantized_float_graph=self.float_graph())

    def edgeq_prequantized(self) -> Prequantized:
        """What ``edgeq.build`` takes from a QAT module instead of tracing and quantizing."""
        return Prequantized(self.quantization(), self.result.float_graph, self.label, _FloatView(self),
                            self.options, self.integer_outputs)

    def _check_inputs(self) -> None:
        for name in self.graph.inputs:
            if self.graph.t(name).quant is None:
                raise EdgeqError(f"edgeq.qat: input '{name}' is integer data (token ids); QAT supports models "
                                 "with float inputs")

    # -- forward passes --------------------------------------------------------------------
    def forward(self, *xs: torch.Tensor) -> Any:
        self.sync()
        ints = [self._quantize_input(i, x) for i, x in enumerate(xs)]
        floats = [self._snap_input(n, q, x.float()) for n, q, x in zip(self.graph.inputs, ints, xs)]
        ints_out, floats_out = self._run(ints, floats, exact=True)
        outs = [q if self.graph.t(n).quant is None else f for n, q, f in zip(self.graph.outputs, ints_out, floats_out)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def forward_float(self, *xs: torch.Tensor) -> Any:
        """The float graph with the current weights (no quantization): the float reference."""
        _, outs = self._run(None, [x.float() for x in xs], exact=False)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def integer_outputs(self, inputs: list[np.ndarray], batch: int = 256) -> list[np.ndarray]:
        """The graph's output integers for input integers (NCHW), as the reference interpreter
        gives them."""
        self.sync()
        chunks = []
        with torch.no_grad():
            for s in range(0, inputs[0].shape[0], batch):
                ints, _ = self._run([torch.from_numpy(np.asarray(x[s:s + batch]).astype(np.int64)) for x in inputs],
                                    None, exact=True)
                chunks.append([q.numpy().astype(self.graph.t(n).dtype) for n, q in zip(self.graph.outputs, ints)])
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(self.graph.outputs))]

    def _run(self, ints: list[torch.Tensor] | None, floats: list[torch.Tensor] | None,
             exact: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        g = self.graph
        iv: dict[str, torch.Tensor] = dict(zip(g.inputs, ints)) if ints is not None else {}
        fv: dict[str, torch.Tensor] = dict(zip(g.inputs, floats)) if floats is not None else {}
        for node in g.nodes:
            kernel = self._kernels[node.name]
            out = node.outputs[0]
            if ints is not None:
                with torch.no_grad():
                    args = [iv[n] if n in iv else self._const_int(n) for n in node.inputs]
                    iv[out] = kernel.int_forward(node, g, args)
            if floats is None:
                continue
            args = [fv[n] if n in fv else self._const_float(node, k, exact) for k, n in enumerate(node.inputs)]
            y = kernel.float_forward(node, g, args)
            if exact:
                y = self._snap(node, out, y, iv[out])
            fv[out] = y
        return [iv[o] for o in g.outputs] if ints is not None else [], [fv[o] for o in g.outputs] if floats else []

    def _snap(self, node: Node, out: str, y_sim: torch.Tensor, y_int: torch.Tensor) -> torch.Tensor:
        """The integer result as a value, the (saturation-clipped) surrogate as a gradient."""
        t = self.graph.t(out)
        if t.quant is None:
            return y_int.to(torch.float32)
        scale, zp = t.quant.scalar()
        scale = float(np.float32(scale))
        lo, hi = dtype_range(t.dtype)
        src = sc.root(out, self._follows)
        if src in self._scale_slot:
            return sc.lsq(y_sim, self.scales[self._scale_slot[src]], scale, y_int, zp, lo, hi,
                          sc.grad_scale(self.graph, out))
        y_sim = y_sim.clamp((lo - zp) * scale, (hi - zp) * scale)
        value = ((y_int.to(torch.float64) - zp) * scale).to(torch.float32)
        return y_sim + (value - y_sim).detach()

    def _snap_input(self, name: str, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if name not in self._scale_slot:
            return x + (self._dequantize(name, q) - x).detach()
        t = self.graph.t(name)
        scale, zp = t.quant.scalar()
        return sc.lsq(x, self.scales[self._scale_slot[name]], scale, q, zp, *dtype_range(t.dtype),
                      sc.grad_scale(self.graph, name))

    def _quantize_input(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """``interpreter.quantize_input`` in torch: float32 division, the target's rounding."""
        t = self.graph.t(self.graph.inputs[i])
        scale, zp = t.quant.scalar()
        v = (x.to(torch.float32) / torch.tensor(np.float32(scale))).to(torch.float64)
        r = torch.round(v) if self.input_rounding == "half_even" else tm.round_half_away(v)
        return (r + zp).clamp(*dtype_range(t.dtype)).to(torch.int64)

    def _dequantize(self, name: str, q: torch.Tensor) -> torch.Tensor:
        scale, zp = self.graph.t(name).quant.scalar()
        return ((q.to(torch.float64) - zp) * float(np.float32(scale))).to(torch.float32)

    def _const_int(self, name: str) -> torch.Tensor:
        return long(self.graph.t(name).data)

    def _const_float(self, node: Node, k: int, exact: bool) -> torch.Tensor:
        """A constant operand as the surrogate sees it: a weighted node's weight fake-quantized
        (straight through) and its float bias; any other constant dequantized."""
        t = self.graph.t(node.inputs[k])
        if node.name in self._slot and k in (1, 2):
            w, b = self.parameters_of(node.name)
            if k == 2:
                return b
            if not exact:
                return w
            wq = torch.from_numpy(dequantize_constant(t.data, t.quant))
            return w + (wq - w).detach()
        if t.quant is None:
            return torch.from_numpy(np.asarray(t.data)).to(torch.float32)
        return torch.from_numpy(dequantize_constant(t.data, t.quant))


class _FloatView(nn.Module):
    """The QAT module's float graph (current weights, no quantization) as a module: the float
    reference of a build from a QAT module (its state is the module's float weights)."""

    def __init__(self, qm: QATModule) -> None:
        super().__init__()
        self.qm = qm

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.qm.forward_float(*xs)


def _weight_scales(node: Node, graph: Graph, w: np.ndarray, options: dict) -> np.ndarray:
    """The weight scales the op's quantize() derives from float weights ``w`` (it is run on a
    scratch copy of the node)."""
    scratch = Graph(tensors={n: dataclasses.replace(graph.t(n)) for n in (*node.inputs, *node.outputs)},
                    nodes=[], layout=graph.layout)
    scratch.tensors[node.inputs[1]] = Tensor(node.inputs[1], w.shape, "float32", w.copy())
    scratch.tensors[node.inputs[2]] = Tensor(node.inputs[2], graph.t(node.inputs[2]).shape, "float32",
                                             np.zeros(graph.t(node.inputs[2]).shape, np.float32))
    copy = Node(node.op, list(node.inputs), list(node.outputs), dict(node.attrs), node.name, node.module_path)
    get_op(node.op).quantize(copy, scratch, options)
    return scratch.t(node.inputs[1]).quant.scale


def _unshared(graph: Graph) -> Graph:
    """A copy in which every weighted node owns its weight and bias tensors (the first reader
    keeps the shared tensor's name, so sharing them again gives the original graph back)."""
    g = graph.copy()
    seen: set[str] = set()
    for node in g.nodes:
        for k, name in enumerate(node.inputs):
            t = g.t(name)
            if not t.is_constant:
                continue
            if name in seen and get_op(node.op).weighted and k in (1, 2):
                copy = g.add_tensor(Tensor(g.unique_name(f"{name}_{node.name}"), t.shape, t.dtype, t.data.copy(),
                                           dataclasses.replace(t.quant) if t.quant else None))
                node.inputs[k] = copy.name
            seen.add(name)
    return g


def _same_constant(t: Tensor, u: Tensor) -> bool:
    return t.dtype == u.dtype and t.shape == u.shape and np.array_equal(t.data, u.data) and \
        (t.quant is None) == (u.quant is None) and (t.quant is None or t.quant.to_dict() == u.quant.to_dict())


def _same_graph(a: Graph, b: Graph) -> bool:
    """Same nodes, attributes, tensors and constants (the integers a build would emit)."""
    if [(n.op, n.inputs, n.outputs, n.name) for n in a.nodes] != [(n.op, n.inputs, n.outputs, n.name) for n in b.nodes]:
        return False
    if list(a.tensors) != list(b.tensors):
        return False
    for name, t in a.tensors.items():
        u = b.tensors[name]
        if t.dtype != u.dtype or t.shape != u.shape or (t.data is None) != (u.data is None):
            return False
        if t.data is not None and not np.array_equal(t.data, u.data):
            return False
        if (t.quant is None) != (u.quant is None) or (t.quant and t.quant.to_dict() != u.quant.to_dict()):
            return False
    return all(_same_attrs(m.attrs, n.attrs) for m, n in zip(a.nodes, b.nodes))


def _same_attrs(x: Any, y: Any) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same_attrs(x[k], y[k]) for k in x)
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y))
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same_attrs(p, q) for p, q in zip(x, y))
    if isinstance(x, Graph) or isinstance(y, Graph):
        return isinstance(x, Graph) and isinstance(y, Graph) and _same_graph(x, y)
    return x == y

