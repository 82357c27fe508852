"""Mixed precision within integer-only: choose which activations are int16 ("16x8" layers).

``promote(graph, tensors)`` takes a float graph and the activations to keep in int16 and returns
a float graph in which every node has one activation type:

* a promoted tensor stays int16 through the data-movement ops that read it (reshape, pooling:
  they carry their input's quantization);
* a node runs in 16x8 mode (int16 activation inputs and outputs) when it reads or writes a
  promoted tensor and its op has an int16 kernel for it (``OpDef.int16_capable``);
* where an int8 node meets an int16 tensor, or a 16x8 node meets an int8 one, a ``requantize``
  node converts (TFLite QUANTIZE between integer types; the identity in float).

In the result, int16 activations have ``Tensor.int_type == "int16"`` and each inserted tensor
names the one whose calibrated range it shares (``Tensor.range_of``); ``edgeq.quantize`` reads
both.
Only activations change type: weights stay int8 everywhere.
"""
from __future__ import annotations

from ..ir import Graph, Node, Tensor
from ..ops import get_op


def int16_capable(graph: Graph, tensor: str) -> bool:
    """Can ``tensor`` be promoted? Its producer must have an int16 kernel and own its output
    quantization (not a fixed one such as softmax's)."""
    node = graph.producer(tensor)
    if node is None:
        return False
    op = get_op(node.op)
    return op.int16_capable(node, graph) and op.fixed_output_quant is None and op.output_dtype is None


def promote(graph: Graph, tensors: set[str] | list[str]) -> Graph:
    """Return a copy of the float ``graph`` with ``tensors`` (activations) in int16."""
    g = graph.copy()
    wanted = set(tensors)
    for name in sorted(wanted):
        if name not in g.tensors or g.t(name).is_constant or not int16_capable(g, name):
            raise ValueError(f"tensor '{name}' cannot be int16: its producer has no int16 kernel")
    promoted = _follow_data_movement(g, wanted)
    wide_nodes = {n.name for n in g.nodes if _is_wide(g, n, promoted)}
    int16 = set(promoted)
    for n in g.nodes:
        if n.name in wide_nodes:
            int16.update(n.outputs)
    converted: dict[tuple[str, str], str] = {}
    new_nodes: list[Node] = []
    for node in g.nodes:
        want_wide = node.name in wide_nodes
        for k, name in enumerate(node.inputs):
            if g.t(name).is_constant or (name in int16) == want_wide:
                continue
            key = (name, "int16" if want_wide else "int8")
            if key not in converted:
                src = g.t(name)
                out = g.add_tensor(Tensor(g.unique_name(f"{name}_{key[1]}"), src.shape, src.dtype))
                new_nodes.append(Node("requantize", [name], [out.name], {}, g.unique_name(f"{out.name}_q"),
                                      node.module_path))
                converted[key] = out.name
                out.range_of = name
                if want_wide:
                    int16.add(out.name)
            node.inputs[k] = converted[key]
        new_nodes.append(node)
    g.nodes = new_nodes
    for name in int16:
        g.t(name).int_type = "int16"
    return g


def _follow_data_movement(g: Graph, promoted: set[str]) -> set[str]:
    """Extend the promoted set through ops that carry their input's quantization."""
    out = set(promoted)
    for node in g.nodes:    # execution order: one sweep reaches the end of a chain
        op = get_op(node.op)
        if op.int16_capable(node, g) and op.same_quant_as_input and node.inputs[0] in out:
            out.update(node.outputs)
    return out


def _is_wide(g: Graph, node: Node, promoted: set[str]) -> bool:
    if not get_op(node.op).int16_capable(node, g):
        return False
    activations = [n for n in node.inputs if not g.t(n).is_constant] + node.outputs
    return any(n in promoted for n in activations)
