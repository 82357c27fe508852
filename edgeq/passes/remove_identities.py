from ..ir import Graph


def remove_identities(graph: Graph) -> Graph:
    """Drop clone/dropout/alias nodes and reshapes to the same shape."""
    g = graph.copy()
    for node in list(g.nodes):
        same_shape = node.op == "reshape" and g.t(node.inputs[0]).shape == g.t(node.outputs[0]).shape
        if node.op != "identity" and not same_shape:
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if g.is_graph_output(dst) and (src in g.inputs or g.is_graph_output(src)):
            continue  # keep a distinct output tensor
        g.remove_node(node)
        g.replace_uses(dst, src)
    g.prune()
    return g
