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
    if transposed:
        _conv_transpose(t, fx)
        return
    if len(t.consts[w.name].shape) == 3:
        _conv1d(t, fx)
        return
    if len(t.consts[w.name].shape) != 4:
        raise unsupported(fx, "only 1-D and 2-D convolutions are supported")
    out_ch = t.consts[w.name].shape[0]
    bias = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_bias", np.zeros(out_ch, np.float32)).name
    ph, pw = pair(padding)
    t.emit(fx, "conv2d", [t.tensor(x), t.tensor(w), bias],
           {"stride": pair(stride), "padding": (ph, pw, ph, pw), "dilation": pair(dilation), "groups": int(groups)})


def _conv_transpose(t: Tracer, fx: torch.fx.Node) -> None:
    """ConvTranspose2d: torch's [I, O/groups, kH, kW] weight becomes OIHW filters."""
    x, w, b, stride, padding, dilation, _transposed, out_pad, groups = fx.args
    wd = t.const_array(w)
    if wd.ndim != 4:
        raise unsupported(fx, "only 2-D transposed convolutions are supported (not conv_transpose1d/3d)")
    filters = from_torch_weight(wd, int(groups))
    wname = t.graph.add_constant(f"{fx.name}_weight_oihw", filters).name
    bias = t.tensor(b) if b is not None else \
        t.graph.add_constant(f"{fx.name}_bias", np.zeros(filters.shape[0], np.float32)).name
    t.emit(fx, "conv_transpose2d", [t.tensor(x), wname, bias],
           {"stride": pair(stride), "padding": Padding.symmetric(*pair(padding)), "output_padding": pair(out_pad),
            "dilation": pair(dilation), "groups": int(groups)})


def _conv1d(t: Tracer, fx: torch.fx.Node) -> None:
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
    p = int(pair(padding)[0])
    t.graph.nodes.append(Node("reshape", [t.tensor(x)], [x4], {"shape": [c, 1, length]}, f"{fx.name}_unsqueeze", mp))
    t.graph.nodes.append(Node("conv2d", [x4, w4, bias], [y4],
                              {"stride": (1, int(pair(stride)[0])), "padding": (0, p, 0, p),
                               "dilation": (1, int(pair(dilation)[0])), "groups": int(groups)}, fx.name, mp))
    t.emit(fx, "reshape", [y4], {"shape": [out[1], out[2]]})
    t.graph.nodes[-1].name = f"{fx.name}_squeeze"


def _linear(t: Tracer, fx: torch.fx.Node, x: torch.fx.Node, w_t: torch.fx.Node, b: torch.fx.Node | None) -> None:
    if not t.is_const(w_t) or (b is not None and not t.is_const(b)):
        raise unsupported(fx, "matrix multiply needs a constant weight operand")
    w = np.ascontiguousarray(t.const_array(w_t).T)
    wname = t.graph.add_constant(f"{fx.name}_weight", w).name
    bias = t.const_array(b) if b is not None else np.zeros(w.shape[0], np.float32)
    bias = np.broadcast_to(bias, (w.shape[0],)).astype(np.float32).copy()
    bname = t.graph.add_constant(f"{fx.name}_bias", bias).name
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
    ch = t.consts[mean.name].shape[0]
    w_name = t.tensor(w) if w is not None else t.graph.add_constant(f"{fx.name}_w", np.ones(ch, np.float32)).name
    b_name = t.tensor(b) if b is not None else t.graph.add_constant(f"{fx.name}_b", np.zeros(ch, np.float32)).name
    val = fx.meta["val"][0]
    t.graph.add_tensor(Tensor(fx.name, tuple(val.shape), "float32"))
    t.graph.nodes.append(Node("batch_norm", [t.tensor(x), w_name, b_name, t.tensor(mean), t.tensor(var)],
                              [fx.name], {"eps": float(eps)}, fx.name, module_path(fx)))
