"""Handlers of the weighted layers: convolution (1-D, 2-D, transposed), matrix multiply, batch norm."""
from __future__ import annotations


import numpy as np
import torch

from ...ir import Node, Tensor
from ...ops.base import Padding
from ...ops.conv_transpose2d import from_torch_weight
from ..tracer import Tracer, aten, handles, module_path, pair, unsupported


@handles(aten.convolution.default)
def _conv(t: Tracer, fx: torch.fx.Node) -> None:
    x, w, b, stride, padding, dilation, transposed, _out_pad, groups = fx.args
    if not t.is_const(w) or (b is not None and not t.is_const(b)):
        raise unsupported(fx, "convolution weights must be constants")
    xin = t.batch_first(fx, x)
    if transposed:
        _conv_transpose(t, fx, xin)
        return
    if len(t.consts[w.name].shape) == 3:
        _conv1d(t, fx, xin)
        return
    if len(t.consts[w.name].shape) != 4:
        raise unsupported(fx, "only 1-D and 2-D convolutions are supported")
    out_ch = t.consts[w.name].shape[0]
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(out_ch, np.float32)).name
    ph, pw = pair(padding)
    t.emit(fx, "conv2d", [xin, t.tensor(w), bias],
           {"stride": pair(stride), "padding": (ph, pw, ph, pw), "dilation": pair(dilation), "groups": int(groups)},
           batch=0)


def _conv_transpose(t: Tracer, fx: torch.fx.Node, xin: str) -> None:
    """ConvTranspose2d: torch's [I, O/groups, kH, kW] weight becomes OIHW filters."""
    x, w, b, stride, padding, dilation, _transposed, out_pad, groups = fx.args
    wd = t.const_array(w)
    if wd.ndim != 4:
        raise unsupported(fx, "only 2-D transposed convolutions are supported (not conv_transpose1d/3d)")
    filters = from_torch_weight(wd, int(groups))
    wname = t.graph.add_constant(f"{fx.name}_weight_oihw", filters).name
    bias = t.tensor(b) if b is not None else \
        t.graph.add_constant(f"{fx.name}_bias", np.zeros(filters.shape[0], np.float32)).name
    t.emit(fx, "conv_transpose2d", [xin, wname, bias],
           {"stride": pair(stride), "padding": Padding.symmetric(*pair(padding)), "output_padding": pair(out_pad),
            "dilation": pair(dilation), "groups": int(groups)}, batch=0)


def _conv1d(t: Tracer, fx: torch.fx.Node, xin: str) -> None:
    """conv1d as unsqueeze -> conv2d with a (1, K) kernel -> squeeze (``passes.lift_1d`` then
    keeps whole 1-D stacks 2-D)."""
    x, w, b, stride, padding, dilation, _transposed, _out_pad, groups = fx.args
    wd = t.const_array(w)
    n, c, length = t.shape(x)
    out = t.shape(fx)
    w4 = t.graph.add_constant(f"{fx.name}_weight_2d", np.ascontiguousarray(wd[:, :, None, :])).name
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(wd.shape[0], np.float32)).name
    x4 = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_in_2d"), (n, c, 1, length))).name
    y4 = t.graph.add_tensor(Tensor(t.graph.unique_name(f"{fx.name}_2d"), (out[0], out[1], 1, out[2]))).name
    mp = module_path(fx)
    p = int(pair(padding)[0])
    t.graph.nodes.append(Node("reshape", [xin], [x4], {"shape": [c, 1, length]}, f"{fx.name}_unsqueeze", mp))
    t.graph.nodes.append(Node("conv2d", [x4, w4, bias], [y4],
                              {"stride": (1, int(pair(stride)[0])), "padding": (0, p, 0, p),
                               "dilation": (1, int(pair(dilation)[0])), "groups": int(groups)}, fx.name, mp))
    t.emit(fx, "reshape", [y4], {"shape": [out[1], out[2]]}, batch=0)
    t.graph.nodes[-1].name = f"{fx.name}_squeeze"


def _linear(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, w_t: torch.fx.Node, b: torch.fx.Node | None) -> None:
    if not t.is_const(w_t) or (b is not None and not t.is_const(b)):
        raise unsupported(fx, "matrix multiply needs a constant weight operand")
    if not t.is_activation(x):
        raise unsupported(fx, "matrix multiply of two constants that was not folded")
    w_t_array = t.const_array(w_t)
    while w_t_array.ndim > 2 and w_t_array.shape[0] == 1:     # bmm's (1, K, N) weight at batch 1
        w_t_array = w_t_array[0]
    w = np.ascontiguousarray(w_t_array.T)
    wname = t.constant(f"{fx.name}_weight", w)
    bias = t.const_array(b) if b is not None else np.zeros(w.shape[0], np.float32)
    if bias.ndim == 2 and bias.shape[0] == 1:
        bias = bias[0]
    if bias.ndim > 1:
        raise unsupported(fx, f"a bias of shape {bias.shape} (one value per output feature expected)")
    bias = np.broadcast_to(bias, (w.shape[0],)).astype(np.float32).copy()
    bname = t.constant(f"{fx.name}_bias", bias)
    t.emit(fx, "linear", [t.tensor(x), wname, bname])


@handles(aten.addmm.default)
def _addmm(t: Tracer, fx: torch.fx.Node) -> None:
    b, x, w_t = fx.args[:3]
    if fx.kwargs.get("beta", 1) != 1 or fx.kwargs.get("alpha", 1) != 1:
        raise unsupported(fx, "addmm with alpha/beta other than 1")
    _linear(t, fx, x, w_t, b)


@handles(aten.mm.default)
def _mm(t: Tracer, fx: torch.fx.Node) -> None:
    _linear(t, fx, fx.args[0], fx.args[1], None)


@handles(aten._native_batch_norm_legit_no_training.default)
def _batch_norm(t: Tracer, fx: torch.fx.Node) -> None:
    x, w, b, mean, var, _momentum, eps = fx.args
    if t.ir_dim(fx, x, 1) != 1:
        raise unsupported(fx, "a batch norm whose channels are not the dimension after the batch")
    ch = t.consts[mean.name].shape[0]
    w_name = t.tensor(w) if w is not None else t.graph.add_constant(f"{fx.name}_w", np.ones(ch, np.float32)).name
    b_name = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_b", np.zeros(ch, np.float32)).name
    t.emit(fx, "batch_norm", [t.tensor(x), w_name, b_name, t.tensor(mean), t.tensor(var)], {"eps": float(eps)})


@handles(aten.bmm.default, aten.matmul.default)
def _bmm(t: Tracer, fx: torch.fx.Node) -> None:
    """A product of two activations over their last two dimensions (attention's QK^T and AV);
    a constant right operand (2-D, or with unit leading dimensions) is a linear layer."""
    a, b = fx.args[:2]
    if t.is_const(b) and all(d == 1 for d in t.shape(b)[:-2]):
        _linear(t, fx, a, b, None)       # a linear layer on a non-contiguous input arrives so
        return
    if not (t.is_activation(a) and t.is_activation(b)):
        raise unsupported(fx, "a batched matrix product with a constant operand")
    batch = t.broadcast_batch(fx, [a, b])
    if batch is not None and batch >= len(t.shape(fx)) - 2:
        raise unsupported(fx, "a matrix product over the batch dimension")
    t.emit(fx, "batch_matmul", [t.aligned(fx, a, batch, shape_of=a), t.aligned(fx, b, batch, shape_of=b)],
           batch=batch)
