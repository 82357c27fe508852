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
from ..ops import get_op
from ..ops.base import Padding

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
        self.conditions: dict[str, torch.fx.Node] = {}  # comparisons awaiting a where()
        self.splits: dict[str, tuple] = {}  # split nodes: (source, dim, piece offsets)
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
        for node in self.graph.nodes:
            get_op(node.op).check_attrs(node)
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
    if not t.is_const(w) or (b is not None and not t.is_const(b)):
        raise _unsupported(fx, "convolution weights must be constants")
    if transposed:
        _conv_transpose(t, fx)
        return
    if len(t.consts[w.name].shape) == 3:
        _conv1d(t, fx)
        return
    if len(t.consts[w.name].shape) != 4:
        raise _unsupported(fx, "only 1-D and 2-D convolutions are supported")
    out_ch = t.consts[w.name].shape[0]
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(out_ch, np.float32)).name
    ph, pw = _pair(padding)
    t.emit(fx, "conv2d", [t.tensor(x), t.tensor(w), bias],
           {"stride": _pair(stride), "padding": (ph, pw, ph, pw), "dilation": _pair(dilation), "groups": int(groups)})


def _conv_transpose(t: _Tracer, fx: torch.fx.Node) -> None:
    """ConvTranspose2d: torch's [I, O/groups, kH, kW] weight becomes OIHW filters."""
    from ..ops.conv_transpose2d import from_torch_weight
    x, w, b, stride, padding, dilation, _transposed, out_pad, groups = fx.args
    wd = t.const_array(w)
    if wd.ndim != 4:
        raise _unsupported(fx, "only 2-D transposed convolutions are supported (not conv_transpose1d/3d)")
    filters = from_torch_weight(wd, int(groups))
    wname = t.graph.add_constant(f"{fx.name}_weight_oihw", filters).name
    bias = t.tensor(b) if b is not None else \
        t.graph.add_constant(f"{fx.name}_bias", np.zeros(filters.shape[0], np.float32)).name
    t.emit(fx, "conv_transpose2d", [t.tensor(x), wname, bias],
           {"stride": _pair(stride), "padding": Padding.symmetric(*_pair(padding)), "output_padding": _pair(out_pad),
            "dilation": _pair(dilation), "groups": int(groups)})


def _conv1d(t: _Tracer, fx: torch.fx.Node) -> None:
    """conv1d as unsqueeze -> conv2d with a (1, K) kernel -> squeeze (``passes.lift_1d`` then
    keeps whole 1-D stacks 2-D)."""
    x, w, b, stride, padding, dilation, _transposed, _out_pad, groups = fx.args
    wd = t.const_array(w)
    n, c, length = x.meta["val"].shape
    out = tuple(fx.meta["val"].shape)
    w4 = t.graph.add_constant(f"{fx.name}_weight_2d", np.ascontiguousarray(wd[:, :, None, :])).name
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(wd.shape[0], np.float32)).name
    x4 = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_in_2d"), (n, c, 1, length))).name
    y4 = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_2d"), (out[0], out[1], 1, out[2]))).name
    mp = module_path(fx)
    p = int(_pair(padding)[0])
    t.graph.nodes.append(Node("reshape", [t.tensor(x)], [x4], {"shape": [c, 1, length]}, f"{fx.name}_unsqueeze", mp))
    t.graph.nodes.append(Node("conv2d", [x4, w4, bias], [y4],
                              {"stride": (1, int(_pair(stride)[0])), "padding": (0, p, 0, p),
                               "dilation": (1, int(_pair(dilation)[0])), "groups": int(groups)}, fx.name, mp))
    t.emit(fx, "reshape", [y4], {"shape": [out[1], out[2]]})
    t.graph.nodes[-1].name = f"{fx.name}_squeeze"


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
    src = t.tensor(args[0])
    if count_include_pad and (ph or pw):
        # padded positions count as zeros: an explicit zero pad, then a pool without padding
        shape = tuple(args[0].meta["val"].shape)
        padded = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_padded"),
                                           (*shape[:2], shape[2] + 2 * ph, shape[3] + 2 * pw))).name
        t.graph.nodes.append(Node("pad", [src], [padded], {"pads": [[0, 0], [0, 0], [ph, ph], [pw, pw]], "value": 0.0},
                                  f"{fx.name}_pad", module_path(fx)))
        src, ph, pw = padded, 0, 0
    t.emit(fx, "avg_pool2d", [src],
           {"kernel": kernel, "stride": stride, "padding": (ph, pw, ph, pw), "ceil_mode": bool(args[4])})


@handles(aten.mean.dim)
def _mean(t: _Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    rank = len(x.meta["val"].shape)
    dims = fx.args[1] if len(fx.args) > 1 and fx.args[1] is not None else range(rank)
    axes = sorted({int(a) % rank for a in dims})
    if 0 in axes:
        raise _unsupported(fx, "a mean over the batch dimension")
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    t.emit(fx, "mean", [t.tensor(x)], {"axes": axes, "keepdim": keepdim})


@handles(aten.argmax.default)
def _argmax(t: _Tracer, fx: torch.fx.Node) -> None:
    """argmax over one axis, as a model output (the int32 indices feed nothing else)."""
    x = fx.args[0]
    dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
    keepdim = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("keepdim", False))
    rank = len(x.meta["val"].shape)
    if dim is None or int(dim) % rank == 0:
        raise _unsupported(fx, "argmax over the batch dimension or the flattened tensor (give a dim >= 1)")
    if any(u.op != "output" for u in fx.users):
        raise _unsupported(fx, "argmax is supported only as a model output (its int32 indices cannot feed "
                               "other layers)")
    t.emit(fx, "argmax", [t.tensor(x)], {"axis": int(dim) % rank, "keepdim": keepdim})


@handles(aten._adaptive_avg_pool2d.default, aten.adaptive_avg_pool2d.default)
def _adaptive_avg(t: _Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    oh, ow = _pair(fx.args[1])
    if (oh, ow) == (1, 1):
        t.emit(fx, "mean", [t.tensor(x)], {"axes": [2, 3], "keepdim": True})
        return
    h, w = x.meta["val"].shape[2:]
    if h % oh or w % ow:
        raise _unsupported(fx, f"adaptive average pooling {h}x{w} -> {oh}x{ow} is not a plain pooling "
                               "(the input size must be a multiple of the output size)")
    k = (h // oh, w // ow)
    t.emit(fx, "avg_pool2d", [t.tensor(x)], {"kernel": k, "stride": k, "padding": (0, 0, 0, 0), "ceil_mode": False})


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


def _operand(t: _Tracer, fx: torch.fx.Node, arg: Any, rank: int, scale: float = 1.0) -> str:
    """IR tensor of a binary op operand: an activation, or a constant (torch constant or Python
    number, times ``scale``) left-padded with 1s to the activation rank for broadcasting."""
    if isinstance(arg, torch.fx.Node) and not t.is_const(arg):
        if scale != 1.0:
            raise _unsupported(fx, "scaled tensor operand")
        return t.tensor(arg)
    if isinstance(arg, np.ndarray):
        data = arg.astype(np.float32)
    else:
        data = t.const_array(arg) if isinstance(arg, torch.fx.Node) else np.array(arg, dtype=np.float32)
    data = (data.astype(np.float64) * scale).astype(np.float32)
    if data.ndim > rank:
        raise _unsupported(fx, f"constant operand of rank {data.ndim} broadcasts over the batch dimension")
    data = data.reshape((1,) * (rank - data.ndim) + data.shape)
    return t.graph.add_constant(f"{fx.name}_const", np.ascontiguousarray(data)).name


def _binary(t: _Tracer, fx: torch.fx.Node, op: str, scale_b: float = 1.0) -> None:
    a, b = fx.args[:2]
    rank = len(fx.meta["val"].shape)
    acts = [x for x in (a, b) if isinstance(x, torch.fx.Node) and not t.is_const(x)]
    for x in acts:
        if len(x.meta["val"].shape) != rank or x.meta["val"].shape[0] != fx.meta["val"].shape[0]:
            raise _unsupported(fx, f"{op} of a rank-{len(x.meta['val'].shape)} tensor broadcast to rank {rank}")
    t.emit(fx, op, [_operand(t, fx, a, rank), _operand(t, fx, b, rank, scale_b)])


@handles(aten.add.Tensor, aten.add.Scalar)
def _add(t: _Tracer, fx: torch.fx.Node) -> None:
    alpha = float(fx.kwargs.get("alpha", 1))
    if alpha != 1 and isinstance(fx.args[1], torch.fx.Node) and not t.is_const(fx.args[1]):
        raise _unsupported(fx, "add with alpha")
    _binary(t, fx, "add", alpha)


@handles(aten.sub.Tensor, aten.sub.Scalar)
def _sub(t: _Tracer, fx: torch.fx.Node) -> None:
    alpha = float(fx.kwargs.get("alpha", 1))
    if alpha != 1 and isinstance(fx.args[1], torch.fx.Node) and not t.is_const(fx.args[1]):
        raise _unsupported(fx, "sub with alpha")
    _binary(t, fx, "sub", alpha)


@handles(aten.rsub.Scalar, aten.rsub.Tensor)
def _rsub(t: _Tracer, fx: torch.fx.Node) -> None:
    if float(fx.kwargs.get("alpha", 1)) != 1:
        raise _unsupported(fx, "rsub with alpha")
    rank = len(fx.meta["val"].shape)
    t.emit(fx, "sub", [_operand(t, fx, fx.args[1], rank), _operand(t, fx, fx.args[0], rank)])


@handles(aten.mul.Tensor, aten.mul.Scalar)
def _mul(t: _Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "mul")


@handles(aten.div.Tensor, aten.div.Scalar)
def _div(t: _Tracer, fx: torch.fx.Node) -> None:
    b = fx.args[1]
    if isinstance(b, torch.fx.Node) and not t.is_const(b):
        raise _unsupported(fx, "division by a tensor (only division by a constant is supported)")
    if fx.kwargs.get("rounding_mode") is not None:
        raise _unsupported(fx, "division with a rounding mode")
    rank = len(fx.meta["val"].shape)
    data = t.const_array(b) if isinstance(b, torch.fx.Node) else np.array(b, dtype=np.float32)
    recip = (1.0 / data.astype(np.float64)).astype(np.float32)
    if data.ndim > rank:
        raise _unsupported(fx, "constant divisor broadcasts over the batch dimension")
    c = t.graph.add_constant(f"{fx.name}_recip", recip.reshape((1,) * (rank - recip.ndim) + recip.shape)).name
    t.emit(fx, "mul", [_operand(t, fx, fx.args[0], rank), c])


@handles(aten.maximum.default)
def _maximum(t: _Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "maximum")


@handles(aten.minimum.default)
def _minimum(t: _Tracer, fx: torch.fx.Node) -> None:
    _binary(t, fx, "minimum")


@handles(aten._softmax.default, aten.softmax.int)
def _softmax(t: _Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    t.emit(fx, "softmax", [t.tensor(fx.args[0])], {"axis": int(fx.args[1]) % rank, "beta": 1.0})


@handles(aten._log_softmax.default, aten.log_softmax.int)
def _log_softmax(t: _Tracer, fx: torch.fx.Node) -> None:
    rank = len(fx.args[0].meta["val"].shape)
    axis = int(fx.args[1]) % rank
    if axis == 0:
        raise _unsupported(fx, "log_softmax over the batch dimension")
    t.emit(fx, "log_softmax", [t.tensor(fx.args[0])], {"axis": axis})


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
    if src.name in t.splits:
        source, dim, offsets = t.splits[src.name]
        _emit_slice(t, fx, source, dim, offsets[index], offsets[index + 1], 1)
        return
    if index != 0:
        raise _unsupported(fx, f"output {index} of {_op_name(src)} (e.g. max-pool indices) is not supported")
    t.alias(fx, src)


@handles(aten.clone.default, aten.alias.default, aten.dropout.default, aten.detach.default,
         aten.lift_fresh_copy.default, aten._to_copy.default, aten.contiguous.default)
def _identity(t: _Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "identity", [t.tensor(fx.args[0])])


# -- activations ------------------------------------------------------------------

@handles(aten.sigmoid.default)
def _sigmoid(t: _Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "sigmoid", [t.tensor(fx.args[0])])


@handles(aten.tanh.default)
def _tanh(t: _Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "tanh", [t.tensor(fx.args[0])])


@handles(aten.hardswish.default)
def _hardswish(t: _Tracer, fx: torch.fx.Node) -> None:
    t.emit(fx, "hardswish", [t.tensor(fx.args[0])])


@handles(aten.leaky_relu.default)
def _leaky_relu(t: _Tracer, fx: torch.fx.Node) -> None:
    slope = float(fx.args[1]) if len(fx.args) > 1 else float(fx.kwargs.get("negative_slope", 0.01))
    _leaky_or_prelu(t, fx, fx.args[0], np.array(slope, np.float32))


def _leaky_or_prelu(t: _Tracer, fx: torch.fx.Node, x: torch.fx.Node, slope: np.ndarray) -> None:
    if slope.size == 1 and float(slope.reshape(-1)[0]) >= 0:
        t.emit(fx, "leaky_relu", [t.tensor(x)], {"alpha": float(slope.reshape(-1)[0])})
        return
    rank = len(x.meta["val"].shape)
    t.emit(fx, "prelu", [t.tensor(x), _operand(t, fx, slope, rank)])


@handles(aten.gelu.default)
def _gelu(t: _Tracer, fx: torch.fx.Node) -> None:
    approximate = fx.kwargs.get("approximate", fx.args[1] if len(fx.args) > 1 else "none")
    t.emit(fx, "gelu", [t.tensor(fx.args[0])], {"approximate": str(approximate)})


@handles(aten.gt.Scalar, aten.ge.Scalar)
def _compare(t: _Tracer, fx: torch.fx.Node) -> None:
    """Comparisons are only taken as the condition of a PReLU-style ``where``."""
    t.conditions[fx.name] = fx


@handles(aten.where.self)
def _where(t: _Tracer, fx: torch.fx.Node) -> None:
    cond, a, b = fx.args
    c = t.conditions.get(cond.name) if isinstance(cond, torch.fx.Node) else None
    if c is not None and c.args[0] is a and float(c.args[1]) == 0.0 and isinstance(b, torch.fx.Node) \
            and b.target == aten.mul.Tensor and a in b.args:
        w = b.args[1] if b.args[0] is a else b.args[0]
        if t.is_const(w) or not isinstance(w, torch.fx.Node):
            slope = t.const_array(w) if isinstance(w, torch.fx.Node) else np.array(w, np.float32)
            _leaky_or_prelu(t, fx, a, slope)
            return
    raise _unsupported(fx, "where() is supported only as PReLU / leaky ReLU: where(x > 0, x, x * slope)")


# -- shape and data movement ----------------------------------------------------------

def _rank(fx: torch.fx.Node) -> int:
    return len(fx.meta["val"].shape)


@handles(aten.cat.default)
def _cat(t: _Tracer, fx: torch.fx.Node) -> None:
    tensors = list(fx.args[0])
    dim = int(fx.args[1]) if len(fx.args) > 1 else int(fx.kwargs.get("dim", 0))
    rank = _rank(fx)
    dim %= rank
    if dim == 0:
        raise _unsupported(fx, "concatenation along the batch dimension")
    inputs = [_operand(t, fx, a, rank) for a in tensors]
    t.emit(fx, "concat", inputs, {"axis": dim})


@handles(aten.constant_pad_nd.default)
def _pad(t: _Tracer, fx: torch.fx.Node) -> None:
    x, pad = fx.args[0], [int(p) for p in fx.args[1]]
    value = float(fx.args[2]) if len(fx.args) > 2 else float(fx.kwargs.get("value", 0.0))
    rank = _rank(x)
    pads = [[0, 0] for _ in range(rank)]
    for i in range(len(pad) // 2):      # torch lists (before, after) from the last dimension back
        pads[rank - 1 - i] = [pad[2 * i], pad[2 * i + 1]]
    if any(p < 0 for pr in pads for p in pr):
        raise _unsupported(fx, "negative padding (cropping)")
    if pads[0] != [0, 0]:
        raise _unsupported(fx, "padding the batch dimension")
    t.emit(fx, "pad", [t.tensor(x)], {"pads": pads, "value": value})


def _emit_slice(t: _Tracer, fx: torch.fx.Node, src: torch.fx.Node, dim: int, start: int, end: int,
                step: int, out_name: str | None = None) -> None:
    shape = list(src.meta["val"].shape)
    rank = len(shape)
    dim %= rank
    if dim == 0:
        raise _unsupported(fx, "slicing the batch dimension")
    start, end, step = slice(start, end, step).indices(shape[dim])
    if step <= 0:
        raise _unsupported(fx, "a slice with a non-positive step")
    begin, stop, strides = [0] * rank, list(shape), [1] * rank
    begin[dim], stop[dim], strides[dim] = start, max(end, start), step
    attrs = {"begin": begin, "end": stop, "strides": strides}
    if out_name is None:
        t.emit(fx, "slice", [t.tensor(src)], attrs)
        return
    out_shape = tuple(len(range(b, e, s)) for b, e, s in zip(begin, stop, strides))
    t.graph.add_tensor(Tensor(out_name, out_shape, "float32"))
    t.graph.nodes.append(Node("slice", [t.tensor(src)], [out_name], attrs, out_name, module_path(fx)))


@handles(aten.slice.Tensor)
def _slice(t: _Tracer, fx: torch.fx.Node) -> None:
    args = list(fx.args) + [None] * 5
    src, dim = args[0], int(args[1] if args[1] is not None else 0)
    start = int(args[2]) if args[2] is not None else 0
    end = int(args[3]) if args[3] is not None else 2 ** 62
    step = int(args[4]) if args[4] is not None else 1
    if start == 0 and end >= src.meta["val"].shape[dim] and step == 1:
        t.emit(fx, "identity", [t.tensor(src)])
        return
    _emit_slice(t, fx, src, dim, start, min(end, 2 ** 62), step)


@handles(aten.select.int)
def _select(t: _Tracer, fx: torch.fx.Node) -> None:
    src, dim, index = fx.args[0], int(fx.args[1]), int(fx.args[2])
    size = src.meta["val"].shape[dim]
    index %= size
    tmp = t.graph.unique_name(f"{fx.name}_slice")
    _emit_slice(t, fx, src, dim, index, index + 1, 1, tmp)
    t.emit(fx, "reshape", [tmp], {"shape": list(fx.meta["val"].shape[1:])})


@handles(aten.split_with_sizes.default, aten.split.Tensor)
def _split(t: _Tracer, fx: torch.fx.Node) -> None:
    """Recorded; each used piece becomes a slice at its getitem."""
    src, sizes = fx.args[0], fx.args[1]
    dim = int(fx.args[2]) if len(fx.args) > 2 else int(fx.kwargs.get("dim", 0))
    total = src.meta["val"].shape[dim]
    if isinstance(sizes, int):
        sizes = [min(sizes, total - o) for o in range(0, total, sizes)]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    t.splits[fx.name] = (src, dim, [int(o) for o in offsets])


@handles(aten.upsample_nearest2d.vec, aten.upsample_nearest2d.default)
def _upsample_nearest(t: _Tracer, fx: torch.fx.Node) -> None:
    x = fx.args[0]
    out = tuple(fx.meta["val"].shape[2:])
    scales = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("scale_factors")
    if fx.target == aten.upsample_nearest2d.default:
        scales = [fx.args[2], fx.args[3]] if len(fx.args) > 3 and fx.args[2] is not None else None
    t.emit(fx, "resize_nearest", [t.tensor(x)],
           {"size": out, "scales": None if scales is None else [float(s) for s in scales]})


@handles(aten.upsample_bilinear2d.vec, aten.upsample_bilinear2d.default)
def _upsample_bilinear(t: _Tracer, fx: torch.fx.Node) -> None:
    """Bilinear resize. torch maps output pixels with 1/scale_factor when a scale factor is given
    and with in/out otherwise; TFLite's RESIZE_BILINEAR (the integer algorithm) always uses in/out,
    so a scale factor is accepted only where the two agree (e.g. integer factors)."""
    x = fx.args[0]
    in_hw = tuple(x.meta["val"].shape[2:])
    out = tuple(fx.meta["val"].shape[2:])
    align_corners = bool(fx.args[2]) if len(fx.args) > 2 else bool(fx.kwargs.get("align_corners", False))
    if fx.target == aten.upsample_bilinear2d.vec:
        scales = fx.args[3] if len(fx.args) > 3 else fx.kwargs.get("scale_factors")
    else:
        scales = [fx.args[3], fx.args[4]] if len(fx.args) > 4 and fx.args[3] is not None else None
    if scales is not None and not align_corners:
        for s, i, o in zip(scales, in_hw, out):
            if s is not None and np.float32(1.0 / float(s)) != np.float32(i) / np.float32(o):
                raise _unsupported(fx, f"bilinear resize {in_hw} -> {out} with scale factor {s}: torch samples "
                                       f"at 1/{s}, not at in/out = {i}/{o} as TFLite does; pass size=, or a "
                                       "scale factor equal to out/in")
    t.emit(fx, "resize_bilinear", [t.tensor(x)], {"size": out, "align_corners": align_corners})
