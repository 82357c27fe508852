from ..ir import Graph
from ..ops import get_op


def fuse_activations(graph: Graph) -> Graph:
    """Fold a ReLU / ReLU6 / hardtanh clamp into the op that produces its input, when that op
    accepts it (``OpDef.fusable_activation`` / ``accepts_activation``)."""
    g = graph.copy()
    for clamp in list(g.op_nodes("clamp")):
        prod = g.producer(clamp.inputs[0])
        if prod is None or not get_op(prod.op).fusable_activation or prod.attrs.get("activation") \
                or len(g.consumers(prod.outputs[0])) != 1 or g.is_graph_output(prod.outputs[0]):
            continue
        act = clamp.attrs["activation"]
        if not get_op(prod.op).accepts_activation(act):
            continue
        prod.attrs["activation"] = dict(act)
        g.remove_node(clamp)
        g.replace_uses(clamp.outputs[0], prod.outputs[0])
    g.prune()
    return g
