"""TFLite lowerings of the weighted layers: CONV_2D, DEPTHWISE_CONV_2D, linear (a 1x1 CONV_2D or
FULLY_CONNECTED) and TRANSPOSE_CONV; and the product of two activations, BATCH_MATMUL."""
from __future__ import annotations


import numpy as np

from ...errors import UnsupportedOpError
from ...ir import Node, QuantParams
from .builder import BO, INT8_MAX, INT8_MIN, Act, ModelBuilder, padding_plan
from .registry import lowers
from .schema import fb


def _conv_like(b: ModelBuilder, node: Node, depthwise: bool) -> None:
    x, w, bias = node.inputs
    a = node.attrs
    xs, ys, ws = b.g.t(x).shape, b.g.t(node.outputs[0]).shape, b.g.t(w).shape
    k_hw = (ws[1], ws[2])
    mode, explicit = padding_plan((xs[1], xs[2]), k_hw, tuple(a["stride"]), tuple(a["dilation"]),
                                  tuple(a["padding"]), (ys[1], ys[2]))
    x_idx = b.pad(x, explicit, None) if explicit else b.tensor(x)
    code, out, finish = b.output_with_activation(node)
    wide = b.g.t(x).dtype == "int16"     # 16x8: int16 activations, int64 bias
    if depthwise:
        opts = fb.DepthwiseConv2DOptionsT()
        opts.depthMultiplier = int(a.get("depth_multiplier", ws[3] // xs[3]))
        otype, builtin, version = fb.BuiltinOptions.DepthwiseConv2DOptions, BO.DEPTHWISE_CONV_2D, 5 if wide else 3
    else:
        opts = fb.Conv2DOptionsT()
        grouped = ws[3] != xs[3]
        otype, builtin = fb.BuiltinOptions.Conv2DOptions, BO.CONV_2D
        version = 6 if grouped else 4 if wide else 3
    opts.padding = mode
    opts.strideH, opts.strideW = (int(s) for s in a["stride"])
    opts.dilationHFactor, opts.dilationWFactor = (int(d) for d in a["dilation"])
    opts.fusedActivationFunction = code
    b.op(builtin, [x_idx, b.tensor(w), b.tensor(bias)], [out], otype, opts, version)
    finish()


@lowers("conv2d")
def _conv2d(b: ModelBuilder, node: Node) -> None:
    _conv_like(b, node, depthwise=False)


@lowers("depthwise_conv2d")
def _depthwise(b: ModelBuilder, node: Node) -> None:
    _conv_like(b, node, depthwise=True)


@lowers("linear")
def _linear(b: ModelBuilder, node: Node) -> None:
    if b.linear_op == "fully_connected":
        _linear_fully_connected(b, node)
    else:
        _linear_as_conv(b, node)


def _linear_fully_connected(b: ModelBuilder, node: Node) -> None:
    """FULLY_CONNECTED. Exact in TFLite Micro; LiteRT's reference FULLY_CONNECTED requantizes in
    double precision (round(acc * s_in * s_w / s_out), LiteRT#8567), so it differs from every
    MultiplyByQuantizedMultiplier kernel by 1 LSB where double rounding and single rounding
    disagree."""
    x, w, bias = node.inputs
    code, out, finish = b.output_with_activation(node)
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = code
    opts.keepNumDims = len(b.g.t(x).shape) > 2
    version = 7 if b.g.t(x).dtype == "int16" else 5 if opts.keepNumDims else 4
    b.op(BO.FULLY_CONNECTED, [b.tensor(x), b.tensor(w), b.tensor(bias)], [out],
         fb.BuiltinOptions.FullyConnectedOptions, opts, version=version)
    finish()


def _linear_as_conv(b: ModelBuilder, node: Node) -> None:
    """x [1, ..., K] @ W[N, K]^T as a 1x1 CONV_2D on [1, 1, M, K] between two RESHAPEs: the int8
    conv kernels of TFLite Micro and LiteRT (reference) both requantize with
    MultiplyByQuantizedMultiplier per output channel, exactly the IR linear's arithmetic.
    Between two linear layers the activation stays [1, 1, M, K] (no RESHAPE pair)."""
    x, w, bias = node.inputs
    y = node.outputs[0]
    xt, wt, yt = b.g.t(x), b.g.t(w), b.g.t(y)
    k, n_out = xt.shape[-1], wt.shape[0]
    m = int(np.prod(xt.shape[1:-1], dtype=np.int64)) if len(xt.shape) > 2 else 1
    if x in b.conv_view:
        x4 = b.conv_view[x]
    else:
        x4 = b.add_tensor(f"{x}_as_nhwc", (1, 1, m, k), xt.dtype, xt.quant)
        b.reshape(b.tensor(x), x4, (1, 1, m, k))
    wq = wt.quant
    w4 = b.add_tensor(f"{w}_ohwi", (n_out, 1, 1, k), wt.dtype,
                      QuantParams(wq.scale, wq.zero_point, 0 if wq.per_channel else None),
                      wt.data.reshape(n_out, 1, 1, k))
    users = b.g.consumers(y)
    stays_4d = (users and not b.g.is_graph_output(y) and y not in b.index
                and all(u.op == "linear" and u.inputs[0] == y and u.inputs.count(y) == 1 for u in users))
    if stays_4d:
        y4 = b.add_tensor(y, (1, 1, m, n_out), yt.dtype, yt.quant)
        b.index[y] = b.conv_view[y] = y4
        code, out, finish = b.output_with_activation(node, y4)
    else:
        code, out, finish = b.output_with_activation(node)
        y4 = b.add_tensor(f"{y}_nhwc", (1, 1, m, n_out), yt.dtype, yt.quant)
    opts = fb.Conv2DOptionsT()
    opts.padding = fb.Padding.VALID
    opts.strideH = opts.strideW = 1
    opts.fusedActivationFunction = code
    b.op(BO.CONV_2D, [x4, w4, b.tensor(bias)], [y4 if not stays_4d else out], fb.BuiltinOptions.Conv2DOptions,
         opts, version=4 if xt.dtype == "int16" else 3)
    if not stays_4d:
        b.reshape(y4, out, yt.shape)
    finish()


@lowers("conv_transpose2d")
def _conv_transpose(b: ModelBuilder, node: Node) -> None:
    """TRANSPOSE_CONV (version 3: int8, per-channel OHWI filters, int32 bias, no fused activation:
    TFLite Micro's int8 kernel ignores it). VALID padding with the full output size
    ((H - 1) * s + k, or more when output_padding reaches past it: those rows get the bias
    alone, as in torch) puts output row y of torch at row y + padding, so torch's explicit
    padding is a STRIDED_SLICE after it; a clamp that is not the identity is MAXIMUM/MINIMUM."""
    x, w, bias = node.inputs
    y = node.outputs[0]
    a = node.attrs      # groups == 1 and dilation == (1, 1): check_supported
    (_, h, wd, _), (o, kh, kw, _), yshape = b.g.t(x).shape, b.g.t(w).shape, b.g.t(y).shape
    oh, ow = yshape[1], yshape[2]
    (sh, sw), (ph, pw) = a["stride"], a["padding"][:2]   # torch pads both sides alike
    full = (max((h - 1) * sh + kh, ph + oh), max((wd - 1) * sw + kw, pw + ow))
    lo, hi = a["act_min"], a["act_max"]
    clamp = lo > INT8_MIN or hi < INT8_MAX
    dst = b.tensor(y)
    sliced = b.like_index(dst, "unclamped") if clamp else dst
    conv_out = sliced if full == (oh, ow) else b.add_tensor(f"{y}_full", (1, *full, o), "int8", b.g.t(y).quant)
    opts = fb.TransposeConvOptionsT()
    opts.padding = fb.Padding.VALID
    opts.strideH, opts.strideW = int(sh), int(sw)
    opts.fusedActivationFunction = Act.NONE
    out_shape = b.const(f"{y}_output_shape", np.array([1, *full, o], dtype=np.int32))
    b.op(BO.TRANSPOSE_CONV, [out_shape, b.tensor(w), b.tensor(x), b.tensor(bias)], [conv_out],
         fb.BuiltinOptions.TransposeConvOptions, opts, version=3)
    if conv_out != sliced:
        ins = [conv_out] + [b.const(f"{y}_crop_{k}", np.asarray(v, dtype=np.int32)) for k, v in
                            (("begin", [0, ph, pw, 0]), ("end", [1, ph + oh, pw + ow, o]), ("strides", [1, 1, 1, 1]))]
        b.op(BO.STRIDED_SLICE, ins, [sliced], fb.BuiltinOptions.StridedSliceOptions, fb.StridedSliceOptionsT(),
             version=2)
    if clamp:
        b.clamp(sliced, dst, lo, hi)


@lowers("batch_matmul")
def _batch_matmul(b: ModelBuilder, node: Node) -> None:
    """BATCH_MATMUL (adj_x, adj_y false; version 2 int8, 3 int16: int64 accumulator). A 4-D
    product of an NHWC graph is over the NCHW dimensions: TRANSPOSEs to NCHW and back."""
    x1, x2, y = node.inputs[0], node.inputs[1], node.outputs[0]
    ranks = {len(b.g.t(n).shape) for n in (x1, x2, y)}
    if max(ranks) > 5 or min(ranks) < 2:
        raise UnsupportedOpError(f"batch_matmul at {node.where()} of rank {sorted(ranks)}: TFLite's BATCH_MATMUL "
                                 "takes 2 to 5 dimensions")
    nchw = b.g.layout == "nhwc" and ranks == {4}
    ins = [_to_nchw(b, n) if nchw else b.tensor(n) for n in (x1, x2)]
    dst = b.tensor(y)
    out = b.add_tensor(f"{y}_nchw", _nchw(b.g.t(y).shape), b.g.t(y).dtype, b.g.t(y).quant) if nchw else dst
    opts = fb.BatchMatMulOptionsT()
    opts.adjX = opts.adjY = False
    wide = b.g.t(y).dtype == "int16"
    b.op(BO.BATCH_MATMUL, ins, [out], fb.BuiltinOptions.BatchMatMulOptions, opts, version=3 if wide else 2)
    if nchw:
        _permute(b, out, dst, (0, 2, 3, 1))


def _nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[i] for i in (0, 3, 1, 2))


def _permute(b: ModelBuilder, src: int, dst: int, perm: tuple[int, ...]) -> None:
    p = b.const(f"{b.tensors[dst].name}_perm", np.asarray(perm, dtype=np.int32))
    version = 5 if b.info[src][1] == "int16" else 2
    b.op(BO.TRANSPOSE, [src, p], [dst], fb.BuiltinOptions.TransposeOptions, fb.TransposeOptionsT(), version=version)


def _to_nchw(b: ModelBuilder, name: str) -> int:
    t = b.g.t(name)
    dst = b.add_tensor(f"{name}_nchw", _nchw(t.shape), t.dtype, t.quant)
    _permute(b, b.tensor(name), dst, (0, 3, 1, 2))
    return dst
