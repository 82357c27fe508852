"""Collapse the chains of reshapes and transposes that torch's decompositions and the layout
pass leave behind (attention's view / transpose / unsqueeze / squeeze, NHWC round trips).

Each rule is exact (data movement keeps the quantization of its input), so the integer
results do not change; the artifacts get fewer ops, tensors and copies:

* a reshape of a reshape reads the first one's input;
* a transpose of a transpose is one transpose (composed permutation);
* a chain of reshapes and transposes that keeps the element order (a transpose of unit
  dimensions, an NHWC -> NCHW -> flatten round trip) is one reshape;
* a transpose by the identity and a reshape to the same shape are dropped;
* data-movement nodes doing the same thing to the same tensor are computed once.

Reshapes and transposes are recognised by their attribute kinds (``shape``, ``perm``), as the
layout pass does; the pass recurses into bodies (a scan's step)."""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node
from ..ops import get_op

RESHAPE = "reshape"


def merge_data_movement(graph: Graph) -> Graph:
    """A copy of ``graph`` with its reshape / transpose chains collapsed."""
    g = graph.copy()
    _merge_in_place(g)
    return g


def _merge_in_place(g: Graph) -> None:
    for node in g.nodes:
        for attr in get_op(node.op).attributes:
            if attr.kind == "graph" and node.attrs.get(attr.name) is not None:
                _merge_in_place(node.attrs[attr.name])
    changed = True
    while changed:
        changed = False
        for node in list(g.nodes):
            changed |= _as_reshape(g, node) or _bypass_producer(g, node) or _drop_identity(g, node)
        changed |= _share_repeated(g)
        g.prune()


def _kind(node: Node) -> str | None:
    op = get_op(node.op)
    if op.attrs_of_kind("perm"):
        return "perm"
    if op.attrs_of_kind("shape"):
        return "shape"
    return None


def _same_quant(g: Graph, a: str, b: str) -> bool:
    ta, tb = g.t(a), g.t(b)
    if ta.dtype != tb.dtype or ta.int_type != tb.int_type or (ta.quant is None) != (tb.quant is None):
        return False
    if ta.quant is None:
        return True
    qa, qb = ta.quant, tb.quant
    return (qa.axis == qb.axis and qa.scale.tobytes() == qb.scale.tobytes()
            and qa.zero_point.tobytes() == qb.zero_point.tobytes())


def _producer_of_same_kind(g: Graph, node: Node) -> Node | None:
    kind = _kind(node)
    if kind is None:
        return None
    first = g.producer(node.inputs[0])
    if first is None or _kind(first) != kind or not _same_quant(g, first.inputs[0], node.inputs[0]):
        return None
    return first


def _bypass_producer(g: Graph, node: Node) -> bool:
    """reshape(reshape(x)) -> reshape(x); transpose(transpose(x)) -> transpose(x), composed."""
    first = _producer_of_same_kind(g, node)
    if first is None:
        return False
    key = get_op(node.op).attrs_of_kind("perm")
    if key:
        inner = get_op(first.op).attrs_of_kind("perm")[0]
        outer = node.attrs[key[0]]
        node.attrs[key[0]] = [first.attrs[inner][p] for p in outer]
    node.inputs = [first.inputs[0]] + node.inputs[1:]
    return True


def _as_reshape(g: Graph, node: Node) -> bool:
    """A chain of reshapes and transposes ending at ``node`` that keeps the element order is one
    reshape of the chain's input (e.g. NHWC -> NCHW -> flatten -> tokens, or a transpose that
    only moves unit dimensions). Every transpose in it keeps the batch dimension first, so what
    holds for one sample holds for a batch; the order is checked by moving ``arange`` through."""
    if _kind(node) is None or not _keeps_batch_first(node):
        return False
    chain = [node]
    while len(chain) < MAX_CHAIN:
        first = g.producer(chain[0].inputs[0])
        if first is None or _kind(first) is None or not _keeps_batch_first(first) \
                or not _same_quant(g, first.inputs[0], chain[0].inputs[0]):
            break
        chain.insert(0, first)
    out_shape = g.t(node.outputs[0]).shape
    for i, start in enumerate(chain):
        src = start.inputs[0]
        if (i == len(chain) - 1 and node.op == RESHAPE) or g.t(src).shape == out_shape:
            continue        # already a reshape of its input / an identity (dropped elsewhere)
        if _keeps_order(g, chain[i:], src):
            node.op, node.attrs, node.inputs = RESHAPE, {"shape": list(out_shape[1:])}, [src]
            return True
    return False


#: the longest chain of data movement ``_as_reshape`` looks back along
MAX_CHAIN = 8


def _keeps_batch_first(node: Node) -> bool:
    key = get_op(node.op).attrs_of_kind("perm")
    return not key or node.attrs[key[0]][0] == 0


def _keeps_order(g: Graph, chain: list[Node], src: str) -> bool:
    shape = g.t(src).shape
    x = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    for n in chain:
        x = get_op(n.op).run_float(n, g, [x])[0]
    return bool(np.array_equal(x.reshape(-1), np.arange(x.size)))


def _drop_identity(g: Graph, node: Node) -> bool:
    kind = _kind(node)
    if kind is None:
        return False
    src, dst = node.inputs[0], node.outputs[0]
    if kind == "perm":
        perm = node.attrs[get_op(node.op).attrs_of_kind("perm")[0]]
        identity = list(perm) == sorted(perm) or (g.t(src).shape == g.t(dst).shape and _keeps_order(g, [node], src))
    else:
        identity = g.t(src).shape == g.t(dst).shape
    if not identity or not _same_quant(g, src, dst):
        return False
    if g.is_graph_output(dst) and (src in g.inputs or g.is_graph_output(src)):
        return False       # keep a distinct output tensor
    if g.is_graph_output(dst) and g.producer(src) is None:
        return False       # a constant: outputs stay produced by a node
    g.remove_node(node)
    g.replace_uses(dst, src)
    return True


def _share_repeated(g: Graph) -> bool:
    """Data-movement nodes with the same op, inputs and attributes: keep the first."""
    seen: dict[tuple, Node] = {}
    changed = False
    for node in list(g.nodes):
        if _kind(node) is None or len(node.outputs) != 1:
            continue
        key = (node.op, tuple(node.inputs), repr(sorted(node.attrs.items())))
        first = seen.setdefault(key, node)
        if first is node or g.is_graph_output(node.outputs[0]):
            continue
        if not _same_quant(g, first.outputs[0], node.outputs[0]):
            continue
        g.remove_node(node)
        g.replace_uses(node.outputs[0], first.outputs[0])
        changed = True
    return changed
