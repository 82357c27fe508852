from ..ir import Graph

FUSABLE_PRODUCERS = ("conv2d", "depthwise_conv2d", "conv_transpose2d", "linear", "add", "sub", "mul", "max_pool2d", "avg_pool2d")


def fuse_activations(graph: Graph) -> Graph:
    """Fold a ReLU / ReLU6 / hardtanh clamp into the op that produces its input."""
    g = graph.copy()
    for clamp in list(g.op_nodes("clamp")):
        prod = g.producer(clamp.inputs[0])
        if prod is None or prod.op not in FUSABLE_PRODUCERS or prod.attrs.get("activation") \
                or len(g.consumers(prod.outputs[0])) != 1 or g.is_graph_output(prod.outputs[0]):
            continue
        act = clamp.attrs["activation"]
        if prod.op in ("max_pool2d", "avg_pool2d") and act["min"] not in (None, 0.0):
            continue
        prod.attrs["activation"] = dict(act)
        g.remove_node(clamp)
        g.replace_uses(clamp.outputs[0], prod.outputs[0])
    g.prune()
    return g
