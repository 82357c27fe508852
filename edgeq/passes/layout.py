"""The one place layout is decided: rewrite an NCHW (torch) graph into NHWC (TFLite, C).

4-D activations become NHWC; conv (and transposed conv) weights OIHW -> OHWI, depthwise convs become
``depthwise_conv2d`` with 1HWO weights; axis attributes are remapped; reshapes of 4-D tensors
keep torch's flattened element order (by permuting the next linear layer's weight columns when
possible, else by an explicit transpose)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, QuantParams, Tensor
from ..ops import get_op

NCHW_TO_NHWC = (0, 2, 3, 1)   # nhwc dim i is nchw dim NCHW_TO_NHWC[i]
NHWC_TO_NCHW = (0, 3, 1, 2)
AXIS_TO_NHWC = {0: 0, 1: 3, 2: 1, 3: 2}  # nchw axis -> nhwc axis


def _nhwc_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[i] for i in NCHW_TO_NHWC)


def to_nhwc(graph: Graph, input_layout: str = "nhwc") -> Graph:
    """Return an NHWC copy of ``graph`` (float or quantized).

    ``input_layout='nchw'`` keeps 4-D graph inputs in torch layout and transposes them inside."""
    if graph.layout == "nhwc":
        return graph.copy()
    g = graph.copy()
    was4d = {name for name, t in g.tensors.items() if not t.is_constant and len(t.shape) == 4}
    new_nodes: list[Node] = []
    for node in g.nodes:
        new_nodes.extend(_rewrite(g, node, was4d))
    g.nodes = new_nodes
    for name in was4d:
        g.t(name).shape = _nhwc_shape(g.t(name).shape)
    g.layout = "nhwc"
    if input_layout == "nchw":
        _keep_nchw_inputs(g, was4d)
    g.input_layout = input_layout
    g.share_identical_constants()      # weights read by several nodes were permuted once each
    return g


def _rewrite(g: Graph, node: Node, was4d: set[str]) -> list[Node]:
    """One node in NHWC terms, driven by the op's roles and attribute schema."""
    op = get_op(node.op)
    if op.weighted and len(g.t(node.inputs[1]).shape) == 4:
        _conv_weights(g, node)
        return [node]
    if op.attrs_of_kind("perm"):
        return _transpose(g, node, was4d)
    if op.attrs_of_kind("shape"):
        return _reshape(g, node, was4d)
    on_4d = any(i in was4d for i in node.inputs)
    if on_4d:
        axis_keys = op.attrs_of_kind("axis", "axes")
        if axis_keys and _reorders_kept_dims(node, axis_keys):
            return _via_nchw(g, node)
        for key in axis_keys:
            v = node.attrs[key]
            node.attrs[key] = sorted(AXIS_TO_NHWC[a] for a in v) if isinstance(v, list) else AXIS_TO_NHWC[v]
        for key in op.attrs_of_kind("per_dim"):
            node.attrs[key] = [node.attrs[key][i] for i in NCHW_TO_NHWC]
        _constants_to_nhwc(g, node)     # constant operands (broadcast, concatenated) follow the data
    return [node]


def _reorders_kept_dims(node: Node, axis_keys: list[str]) -> bool:
    """A reduction without keepdim whose kept dimensions come out of NHWC in another order than
    out of NCHW: it must run on an NCHW copy of its input."""
    if node.attrs.get("keepdim", True):
        return False
    axes = [a for k in axis_keys for a in (node.attrs[k] if isinstance(node.attrs[k], list) else [node.attrs[k]])]
    return not _same_kept_order(axes)


def _same_kept_order(axes: list[int]) -> bool:
    """True when the dimensions a reduction over NCHW ``axes`` keeps (keepdim False) come in the
    same order from an NHWC tensor: the reduction then runs on NHWC with remapped axes."""
    kept_nchw = [d for d in (1, 2, 3) if d not in axes]
    kept_from_nhwc = [NCHW_TO_NHWC[j] for j in (1, 2, 3) if NCHW_TO_NHWC[j] not in axes]
    return kept_nchw == kept_from_nhwc


def _constants_to_nhwc(g: Graph, node: Node) -> None:
    """4-D constant operands (of a broadcasting op or a concatenation) of a node on 4-D
    activations: NCHW -> NHWC order."""
    for k, name in enumerate(node.inputs):
        t = g.t(name)
        if not t.is_constant or len(t.shape) != 4 or (t.shape[1] == 1 and t.shape[2] * t.shape[3] == 1):
            continue
        new = Tensor(g.unique_name(f"{name}_nhwc"), _nhwc_shape(t.shape), t.dtype,
                     np.ascontiguousarray(t.data.transpose(NCHW_TO_NHWC)), t.quant)
        g.add_tensor(new)
        node.inputs[k] = new.name


def _conv_weights(g: Graph, node: Node) -> None:
    """OIHW filters -> OHWI; a grouped conv with one input channel per group -> the op's
    depthwise form with 1HWO weights."""
    w = g.t(node.inputs[1])
    o, cg, kh, kw = w.shape
    x_channels = g.t(node.inputs[0]).shape[1]
    depthwise = get_op(node.op).depthwise_form
    if depthwise and node.attrs["groups"] == x_channels and cg == 1 and x_channels > 1:
        node.op = depthwise
        node.attrs["depth_multiplier"] = o // x_channels
        del node.attrs["groups"]
        perm, axis = (1, 2, 3, 0), get_op(depthwise).filter_axis
    else:
        perm, axis = (0, 2, 3, 1), 0
    _weights_to(g, node, perm, axis, "1hwo" if axis == 3 else "ohwi")


def _weights_to(g: Graph, node: Node, perm: tuple[int, ...], axis: int, suffix: str) -> None:
    """Give ``node`` a copy of its weight (input 1) permuted by ``perm``, per-channel on ``axis``."""
    w = g.t(node.inputs[1])
    new = Tensor(g.unique_name(f"{w.name}_{suffix}"),
                 tuple(w.shape[p] for p in perm), w.dtype, np.ascontiguousarray(w.data.transpose(perm)))
    if w.quant is not None:
        new.quant = QuantParams(w.quant.scale, w.quant.zero_point, axis if w.quant.per_channel else None)
    g.add_tensor(new)
    node.inputs[1] = new.name


def _transpose(g: Graph, node: Node, was4d: set[str]) -> list[Node]:
    """Re-express a torch (NCHW) permutation on the stored NHWC tensors."""
    if node.inputs[0] in was4d:
        p = node.attrs["perm"]
        node.attrs["perm"] = [NCHW_TO_NHWC.index(p[NCHW_TO_NHWC[j]]) for j in range(4)]
        if node.attrs["perm"] == [0, 1, 2, 3]:
            node.op, node.attrs = "reshape", {"shape": list(_stored_shape(g, node.outputs[0], was4d)[1:])}
    return [node]


def _stored_shape(g: Graph, name: str, was4d: set[str]) -> tuple[int, ...]:
    s = g.t(name).shape
    return _nhwc_shape(s) if name in was4d else s


def _trivial(shape_nchw: tuple[int, ...]) -> bool:
    """NCHW and NHWC hold the elements in the same order when C == 1 or H * W == 1."""
    _, c, h, w = shape_nchw
    return c == 1 or h * w == 1


def _reshape(g: Graph, node: Node, was4d: set[str]) -> list[Node]:
    src, dst = node.inputs[0], node.outputs[0]
    src_shape, dst_shape = g.t(src).shape, g.t(dst).shape
    out: list[Node] = []
    if src in was4d and not _trivial(src_shape):
        if dst not in was4d and len(dst_shape) == 2 and _permute_linear_consumers(g, dst, src_shape):
            return [node]   # the consumers now read NHWC-flattened features
        nchw = g.add_tensor(Tensor(g.unique_name(f"{src}_nchw"), src_shape, g.t(src).dtype, None, g.t(src).quant))
        out.append(Node("transpose", [src], [nchw.name], {"perm": list(NHWC_TO_NCHW)},
                        f"{node.name}_to_nchw", node.module_path))
        node.inputs = [nchw.name]
    if dst in was4d and not _trivial(dst_shape):
        tmp = g.add_tensor(Tensor(g.unique_name(f"{dst}_nchw"), dst_shape, g.t(dst).dtype, None, g.t(dst).quant))
        node.outputs = [tmp.name]
        node.attrs["shape"] = list(dst_shape[1:])
        out.append(node)
        out.append(Node("transpose", [tmp.name], [dst], {"perm": list(NCHW_TO_NHWC)},
                        f"{node.name}_to_nhwc", node.module_path))
        return out
    node.attrs["shape"] = list(_stored_shape(g, dst, was4d)[1:])
    out.append(node)
    return out


def _permute_linear_consumers(g: Graph, flat: str, src_shape: tuple[int, ...]) -> bool:
    """Reorder the weight columns of every linear layer reading ``flat`` from NCHW to NHWC order."""
    users = g.consumers(flat)
    if not users or g.is_graph_output(flat) or any(u.op != "linear" or u.inputs[0] != flat for u in users):
        return False
    _, c, h, w = src_shape
    for u in users:
        wt = g.t(u.inputs[1])
        data = wt.data.reshape(wt.shape[0], c, h, w).transpose(0, 2, 3, 1).reshape(wt.shape)
        new = g.add_tensor(Tensor(g.unique_name(f"{wt.name}_nhwc_cols"), wt.shape, wt.dtype,
                                  np.ascontiguousarray(data), wt.quant))
        u.inputs[1] = new.name
    return True


def _via_nchw(g: Graph, node: Node) -> list[Node]:
    """Run ``node`` on an NCHW copy of its input (for rank-changing ops we do not remap)."""
    src = node.inputs[0]
    nchw = g.add_tensor(Tensor(g.unique_name(f"{src}_nchw"), g.t(src).shape, g.t(src).dtype, None, g.t(src).quant))
    node.inputs = [nchw.name]
    return [Node("transpose", [src], [nchw.name], {"perm": list(NHWC_TO_NCHW)}, f"{node.name}_to_nchw",
                 node.module_path), node]


def _keep_nchw_inputs(g: Graph, was4d: set[str]) -> None:
    for i, name in enumerate(list(g.inputs)):
        if name not in was4d:
            continue
        t = g.t(name)
        outer = g.add_tensor(Tensor(g.unique_name(f"{name}_nchw"), tuple(t.shape[p] for p in NHWC_TO_NCHW),
                                    t.dtype, None, t.quant))
        g.inputs[i] = outer.name
        g.nodes.insert(0, Node("transpose", [outer.name], [name], {"perm": list(NCHW_TO_NHWC)},
                               f"{name}_to_nhwc", ""))
