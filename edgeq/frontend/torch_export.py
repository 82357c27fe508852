"""torch.export front end: ExportedProgram (core aten after decompositions) -> edgeq IR.

Each aten op is mapped by one small handler. Ops whose inputs are all constants are evaluated
right away with torch (constant folding at trace time: weight permutes and the like)."""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import torch

from ..errors import EdgeqError, UnsupportedOpError
from ..ir import Graph, Node, Tensor

aten = torch.ops.aten
Handler = Callable[["_Tracer", torch.fx.Node], None]
HANDLERS: dict[Any, Handler] = {}


def handles(*targets: Any) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        for t in targets:
            HANDLERS[t] = fn
        return fn
    return deco


def supported_aten_ops() -> list[str]:
    return sorted({str(t).replace("aten.", "") for t in HANDLERS if t is not operator.getitem})


def trace(model: torch.nn.Module | torch.export.ExportedProgram,
          input_shapes: list[tuple[int, ...]] | None = None) -> Graph:
    """Export ``model`` (if not already exported) and convert it to a float edgeq Graph.

    ``input_shapes`` are per-input shapes without the batch dimension (batch 1 is used)."""
    if isinstance(model, torch.nn.Module):
        if input_shapes is None:
            raise EdgeqError("an nn.Module needs input shapes: pass calibration data or --input-shape")
        example = tuple(torch.zeros((1, *s)) for s in input_shapes)
        try:
            ep = torch.export.export(model.eval(), example)
        except Exception as e:
            raise EdgeqError(f"torch.export failed on the model: {type(e).__name__}: {e}".splitlines()[0]) from e
    else:
        ep = model
    ep = ep.run_decompositions()
    return _Tracer(ep).run()


class _Tracer:
    def __init__(self, ep: torch.export.ExportedProgram) -> None:
        self.ep = ep
        self.graph = Graph()
        self.consts: dict[str, torch.Tensor] = {}
        self.names: dict[str, str] = {}  # fx node name -> IR tensor name (aliases, getitem)
        sig = ep.graph_signature
        self.param_of = {**sig.inputs_to_parameters, **sig.inputs_to_buffers,
                         **sig.inputs_to_lifted_tensor_constants}

    # -- helpers -----------------------------------------------------------------
    def is_const(self, arg: Any) -> bool:
        return isinstance(arg, torch.fx.Node) and arg.name in self.consts

    def tensor(self, arg: torch.fx.Node) -> str:
        """IR tensor name of an FX value, materialising constants on first use."""
        if arg.name in self.consts:
            if arg.name not in self.graph.tensors:
                data = self.consts[arg.name].detach().numpy().astype(np.float32)
                self.graph.add_tensor(Tensor(arg.name, tuple(data.shape), "float32", np.ascontiguousarray(data)))
            return arg.name
        return self.names.get(arg.name, arg.name)

    def const_array(self, arg: torch.fx.Node) -> np.ndarray:
        return self.consts[arg.name].detach().numpy().astype(np.float32)

    def emit(self, fx: torch.fx.Node, op: str, inputs: list[str], attrs: dict[str, Any] | None = None) -> None:
        val = fx.meta["val"]
        if isinstance(val, (tuple, list)):  # multi-output aten op: output 0 is the tensor we keep
            val = val[0]
        self.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
        self.graph.nodes.append(Node(op, inputs, [fx.name], attrs or {}, fx.name, module_path(fx)))

    def alias(self, fx: torch.fx.Node, source: torch.fx.Node) -> None:
        self.names[fx.name] = self.tensor(source)

    # -- main loop ---------------------------------------------------------------
    def run(self) -> Graph:
        state = {**self.ep.state_dict, **self.ep.constants}
        for fx in self.ep.graph.nodes:
            if fx.op == "placeholder":
                if fx.name in self.param_of:
                    self.consts[fx.name] = state[self.param_of[fx.name]]
                else:
                    val = fx.meta["val"]
                    self.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
                    self.graph.inputs.append(fx.name)
            elif fx.op == "call_function":
                self.call(fx)
            elif fx.op == "output":
                outs = fx.args[0]
                for o in (outs if isinstance(outs, (list, tuple)) else [outs]):
                    if not isinstance(o, torch.fx.Node) or self.is_const(o):
                        raise EdgeqError("a model output is a constant; edgeq needs outputs computed from inputs")
                    self.graph.outputs.append(self.tensor(o))
        for name in self.graph.inputs:
            if self.graph.t(name).shape[0] != 1:
                raise EdgeqError(f"input '{name}' was exported with batch size {self.graph.t(name).shape[0]}; "
                                 "export with batch size 1 (edgeq batches data itself)")
        self.graph.prune()
        return self.graph

    def call(self, fx: torch.fx.Node) -> None:
        tensor_args = [a for a in fx.all_input_nodes]
        if tensor_args and all(self.is_const(a) for a in tensor_args):
            self.fold(fx)
            return
        handler = HANDLERS.get(fx.target)
        if handler is None:
            raise UnsupportedOpError(
                f"unsupported op '{_op_name(fx)}' from module '{module_path(fx) or '<top level>'}' "
                f"(node {fx.name}). Supported aten ops: {', '.join(supported_aten_ops())}. "
                "See `edgeq targets --ops` for what each target lowers.")
        handler(self, fx)

    def fold(self, fx: torch.fx.Node) -> None:
        def sub(a: Any) -> Any:
            return self.consts[a.name] if isinstance(a, torch.fx.Node) else a
        args = torch.fx.node.map_aggregate(fx.args, sub)
        kwargs = torch.fx.node.map_aggregate(fx.kwargs, sub)
        with torch.no_grad():
            result = fx.target(*args, **kwargs)
        if isinstance(result, torch.Tensor):
            self.consts[fx.name] = result


def module_path(fx: torch.fx.Node) -> str:
    stack = fx.meta.get("nn_module_stack")
    if not stack:
        return ""
    return str(list(stack.values())[-1][0])


def _op_name(fx: torch.fx.Node) -> str:
    return str(fx.target).replace("aten.", "")


def _unsupported(fx: torch.fx.Node, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported use of '{_op_name(fx)}' from module '{module_path(fx) or '<top level>'}' "
                              f"(node {fx.name}): {why}")


def _pair(v: Any) -> tuple[int, int]:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))


# -- handlers ---------------------------------------------------------------------

@handles(aten.convolution.default)
def _conv(t: _Tracer, fx: torch.fx.Node) -> None:
    x, w, b, stride, padding, dilation, transposed, _out_pad, groups = fx.args
    if transposed:
        raise _unsupported(fx, "transposed convolution is not supported yet")
    if not t.is_const(w) or (b is not None and not t.is_const(b)):
        raise _unsupported(fx, "convolution weights must be constants")
    if len(t.consts[w.name].shape) != 4:
        raise _unsupported(fx, "only 2-D convolutions are supported yet")
    out_ch = t.consts[w.name].shape[0]
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(out_ch, np.float32)).name
    ph, pw = _pair(padding)
    t.emit(fx, "conv2d", [t.tensor(x), t.tensor(w), bias],
           {"stride": _pair(stride), "padding": (ph, pw, ph, pw), "dilation": _pair(dilation), "groups": int(groups)})


def _linear(t: _Tracer, fx: torch.fx.Node, x: torch.fx.Node, w_t: torch.fx.Node, b: torch.fx.Node | None) -> None:
    if not t.is_const(w_t) or (b is not None and not t.is_const(b)):
        raise _unsupported(fx, "matrix multiply needs a constant weight operand")
    w = np.ascontiguousarray(t.const_array(w_t).T)
    wname = t.graph.add_constant(f"{fx.name}_weight", w).name
    bias = t.const_array(b) if b is not None else np.zeros(w.shape[0], np.float32)
    bias = np.broadcast_to(bias, (w.shape[0],)).astype(np.float32).copy()
    bname = t.graph.add_constant(f"{fx.name}_bias", bias).name
    t.emit(fx, "linear", [t.tensor(x), wname, bname])


@handles(aten.addmm.default)
def _addmm(t: _Tracer, fx: torch.fx.Node) -> None:
    b, x, w_t = fx.args[:3]
    if fx.kwargs.get("beta", 1) != 1 or fx.kwargs.get("alpha", 1) != 1:
        raise _unsupported(fx, "addmm with alpha/beta other than 1")
    _linear(t, fx, x, w_t, b)


@handles(aten.mm.default)
def _mm(t: _Tracer, fx: torch.fx.Node) -> None:
    _linear(t, fx, fx.args[0], fx.args[1], None)


def _clamp(t: _Tracer, fx: torch.fx.Node, lo: float | None, hi: float | None) -> None:
    t.emit(fx, "clamp", [t.tensor(fx.args[0])], {"activation": {"min": lo, "max": hi}})


@handles(aten.relu.default)
def _relu(t: _Tracer, fx: torch.fx.Node) -> None:
    _clamp(t, fx, 0.0, None)


@handles(aten.hardtanh.default)
def _hardtanh(t: _Tracer, fx: torch.fx.Node) -> None:
    lo = float(fx.args[1]) if len(fx.args) > 1 else -1.0
    hi = float(fx.args[2]) if len(fx.args) > 2 else 1.0
    _clamp(t, fx, lo, hi)


@handles(aten.clamp.default)
def _clamp_op(t: _Tracer, fx: torch.fx.Node) -> None:
    lo = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("min")
    hi = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("max")
    _clamp(t, fx, None if lo is None else float(lo), None if hi is None else float(hi))


@handles(aten.max_pool2d_with_indices.default, aten.max_pool2d.default)
def _max_pool(t: _Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 6
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    ph, pw = _pair(args[3] if args[3] is not None else 0)
    dilation = _pair(args[4] if args[4] is not None else 1)
    if dilation != (1, 1):
        raise _unsupported(fx, "dilated max pooling")
    t.emit(fx, "max_pool2d", [t.tensor(args[0])],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[5])})


@handles(aten.avg_pool2d.default)
def _avg_pool(t: _Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 7
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    ph, pw = _pair(args[3] if args[3] is not None else 0)
    count_include_pad = True if args[5] is None else bool(args[5])
    if args[6] is not None:
        raise _unsupported(fx, "avg_pool2d with divisor_override")
    if (ph or pw) and count_include_pad:
        raise _unsupported(fx, "padded avg_pool2d with count_include_pad=True (use count_include_pad=False)")
    t.emit(fx, "avg_pool2d", [t.tensor(args[0])],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[4])})


@handles(aten.mean.dim)
def _mean(t: _Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    rank = len(x.meta["val"].shape)
    axes = sorted(int(a) % rank for a in fx.args[1])
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    t.emit(fx, "mean", [t.tensor(x)], {"axes": axes, "keepdim": keepdim})


@handles(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg(t: _Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    if _pair(fx.args[1]) != (1, 1):
        raise _unsupported(fx, "adaptive average pooling to a size other than 1x1")
    t.emit(fx, "mean", [t.tensor(x)], {"axes": [2, 3], "keepdim": True})


@handles(aten.view.default, aten._unsafe_view.default, aten.reshape.default,
         aten.squeeze.dim, aten.squeeze.dims, aten.squeeze.default, aten.unsqueeze.default,
         aten.flatten.using_ints)
def _reshape(t: _Tracer, fx: torch.fx.Node) -> None:
    src = fx.args[0]
    in_shape = tuple(src.meta["val"].shape)
    out_shape = tuple(fx.meta["val"].shape)
    if not out_shape or out_shape[0] != in_shape[0]:
        raise _unsupported(fx, f"reshape {in_shape} -> {out_shape} mixes the batch dimension with others")
    t.emit(fx, "reshape", [t.tensor(src)], {"shape": list(out_shape[1:])})


@handles(aten.permute.default)
def _permute(t: _Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    perm = [int(p) % rank for p in fx.args[1]]
    if perm[0] != 0:
        raise _unsupported(fx, f"permute {perm} moves the batch dimension")
    t.emit(fx, "transpose", [t.tensor(fx.args[0])], {"perm": perm})


@handles(aten.add.Tensor)
def _add(t: _Tracer, fx: torch.fx.Node) -> None:
    a, b = fx.args[:2]
    if fx.kwargs.get("alpha", 1) != 1:
        raise _unsupported(fx, "add with alpha")
    if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)) or t.is_const(a) or t.is_const(b):
        raise _unsupported(fx, "add of a constant (only tensor + tensor is supported yet)")
    if tuple(a.meta["val"].shape) != tuple(b.meta["val"].shape):
        raise _unsupported(fx, "add with broadcasting")
    t.emit(fx, "add", [t.tensor(a), t.tensor(b)])


@handles(aten._softmax.default, aten.softmax.int)
def _softmax(t: _Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    t.emit(fx, "softmax", [t.tensor(fx.args[0])], {"axis": int(fx.args[1]) % rank, "beta": 1.0})


@handles(aten._native_batch_norm_legit_no_training.default)
def _batch_norm(t: _Tracer, fx: torch.fx.Node) -> None:
    x, w, b, mean, var, _momentum, eps = fx.args
    ch = t.consts[mean.name].shape[0]
    w_name = t.tensor(w) if w is not None else t.graph.add_constant(f"{fx.name}_w", np.ones(ch, np.float32)).name
    b_name = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_b", np.zeros(ch, np.float32)).name
    val = fx.meta["val"][0]
    t.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
    t.graph.nodes.append(Node("batch_norm", [t.tensor(x), w_name, b_name, t.tensor(mean), t.tensor(var)],
                              [fx.name], {"eps": float(eps)}, fx.name, module_path(fx)))


@handles(operator.getitem)
def _getitem(t: _Tracer, fx: torch.fx.Node) -> None:
    src, index = fx.args
    if index != 0:
        raise _unsupported(fx, f"output {index} of {_op_name(src)} (e.g. max-pool indices) is not supported")
    t.alias(fx, src)


@handles(aten.clone.default, aten.alias.default, aten.dropout.default, aten.detach.default,
         aten.lift_fresh_copy.default, aten._to_copy.default, aten.contiguous.default)
def _identity(t: _Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "identity", [t.tensor(fx.args[0])])
