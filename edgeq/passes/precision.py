"""Mixed precision within integer-only: choose which activations are int16 ("16x8" layers).

``promote(graph, tensors)`` takes a float graph and the activations to keep in int16 and returns
a float graph in which every node has one activation type:

* a promoted tensor stays int16 through the data-movement ops that read it (reshape, pooling:
  they carry their input's quantization);
* a node runs in 16x8 mode (int16 activation inputs and outputs) when it reads or writes a
  promoted tensor and its op has an int16 kernel for it (``OpDef.int16_capable``);
* where an int8 node meets an int16 tensor, or a 16x8 node meets an int8 one, a ``requantize``
  node converts (TFLite QUANTIZE between integer types; the identity in float).

A tensor inside a loop's body (``carried_states``: an LSTM's cell state) is promoted with every
tensor its op ties to it (``OpDef.tied_tensors``: the initial value, the state inside the step,
its new value, the final and stacked outputs), since one quantization serves every step: the
body is promoted by the same rules, and the loop node reads its tied inputs and writes its tied
outputs in their state's type.

In the result, int16 activations have ``Tensor.int_type == "int16"`` and each inserted tensor
names the one whose calibrated range it shares (``Tensor.range_of``); ``edgeq.quantize`` reads
both.
Only activations change type: weights stay int8 everywhere.
"""
from __future__ import annotations

from ..ir import Graph, Node, Tensor
from ..ops import get_op, with_bodies


def int16_capable(graph: Graph, tensor: str) -> bool:
    """Can ``tensor`` be promoted? Its producer must have an int16 kernel and own its output
    quantization (not a fixed one such as softmax's)."""
    node = graph.producer(tensor)
    if node is None:
        return False
    op = get_op(node.op)
    return op.int16_capable(node, graph) and op.fixed_output_quant is None and op.output_dtype is None


def carried_states(graph: Graph) -> list[tuple[Node, Graph, str]]:
    """The states loops carry that can be int16, in execution order: (the body's node that
    writes the new state, its body, the new state), for each tie group holding a body output
    whose producer can be int16."""
    out = []
    for node in graph.nodes:
        op = get_op(node.op)
        for body in op.bodies(node):
            for new in body.outputs:
                if int16_capable(body, new) and any(new in grp for grp in op.tied_tensors(node, graph)):
                    out.append((body.producer(new), body, new))
    return out


def promote(graph: Graph, tensors: set[str] | list[str]) -> Graph:
    """Return a copy of the float ``graph`` with ``tensors`` (activations, of the graph or of a
    loop's body) in int16."""
    g = graph.copy()
    wanted = set(tensors)
    inner = {n for n in wanted if n not in g.tensors and any(n in b.tensors for b in with_bodies(g)[1:])}
    _check(g, wanted - inner)
    _promote(g, wanted - inner, inner, {})
    return g


def _promote(g: Graph, wanted: set[str], inner: set[str], fixed: dict[str, bool]) -> None:
    """Promote ``g`` in place: ``wanted`` are its own tensors, ``inner`` tensors of its loops'
    bodies; ``fixed``: the type (int16 or not) the enclosing loop's ties give some of ``g``'s
    inputs and outputs."""
    wanted = set(wanted)
    pinned: dict[tuple[str, int], bool] = {}     # (loop node, input index) -> reads it as int16
    for node in g.nodes:
        op = get_op(node.op)
        bodies = op.bodies(node)
        if not bodies:
            continue
        body_names = set().union(*(b.tensors for b in bodies))
        groups = op.tied_tensors(node, g)
        wide = [grp for grp in groups if any(m in inner and m in body_names for m in grp)]
        members = {m: any(m in grp for grp in wide) for grp in groups for m in grp}
        for body in bodies:
            own = {n for n in inner if n in body.tensors and n not in members}
            _check(body, own)
            ties = {m: w for m, w in members.items() if m in body.tensors}
            # a tied output whose producer has no int16 kernel is converted after it instead
            seeds = {m for m, w in ties.items() if w and (body.producer(m) is None or int16_capable(body, m))}
            _promote(body, own | seeds, inner - set(body.tensors), ties)
        for k, name in enumerate(node.inputs):
            if name in members:
                pinned[(node.name, k)] = members[name]
        wanted |= {o for o in node.outputs if members.get(o)}
    _widen(g, wanted, pinned)
    _fix_outputs(g, fixed)


def _check(graph: Graph, names: set[str]) -> None:
    for name in sorted(names):
        if name not in graph.tensors or graph.t(name).is_constant or not int16_capable(graph, name):
            raise ValueError(f"tensor '{name}' cannot be int16: its producer has no int16 kernel")


def _widen(g: Graph, wanted: set[str], pinned: dict[tuple[str, int], bool]) -> None:
    """Top-level promotion of ``wanted``; ``pinned`` inputs of a loop are read in their tie
    group's type whatever the loop node's own."""
    promoted = _follow_data_movement(g, wanted)
    wide_nodes = {n.name for n in g.nodes if _is_wide(g, n, promoted)}
    int16 = set(promoted)
    for n in g.nodes:
        if n.name in wide_nodes:
            int16.update(n.outputs)
    converted: dict[tuple[str, str], str] = {}
    new_nodes: list[Node] = []
    for node in g.nodes:
        for k, name in enumerate(node.inputs):
            want_wide = pinned.get((node.name, k), node.name in wide_nodes)
            if g.t(name).is_constant or (name in int16) == want_wide:
                continue
            key = (name, "int16" if want_wide else "int8")
            if key not in converted:
                new_nodes.append(_requantize(g, name, key[1], node.module_path))
                converted[key] = new_nodes[-1].outputs[0]
                if want_wide:
                    int16.add(converted[key])
            node.inputs[k] = converted[key]
        new_nodes.append(node)
    g.nodes = new_nodes
    for name in int16:
        g.t(name).int_type = "int16"


def _requantize(g: Graph, name: str, to: str, module_path: str) -> Node:
    src = g.t(name)
    out = g.add_tensor(Tensor(g.unique_name(f"{name}_{to}"), src.shape, src.dtype))
    out.range_of = g.range_source(name)
    return Node("requantize", [name], [out.name], {}, g.unique_name(f"{out.name}_q"), module_path)


def _fix_outputs(body: Graph, fixed: dict[str, bool]) -> None:
    """A body's outputs in the type their ties give them: one whose producer ran in the other
    type is converted (its inputs are seeds already)."""
    for i, name in enumerate(body.outputs):
        want = fixed.get(name)
        if want is None or (body.t(name).int_type == "int16") == want:
            continue
        node = _requantize(body, name, "int16" if want else "int8", body.producer(name).module_path)
        body.nodes.append(node)
        body.outputs[i] = node.outputs[0]
        if want:
            body.t(node.outputs[0]).int_type = "int16"


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
