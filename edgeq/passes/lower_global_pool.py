from ..ir import Graph, Node, Tensor


def lower_global_pool(graph: Graph) -> Graph:
    """Rewrite a mean over the spatial axes of a 4-D NCHW tensor as a global avg_pool2d
    (plus a reshape when keepdim is False): what TFLite and the C kernels implement."""
    g = graph.copy()
    for node in list(g.op_nodes("mean")):
        x = g.t(node.inputs[0])
        if len(x.shape) != 4 or sorted(node.attrs["axes"]) != [2, 3]:
            continue
        _, c, h, w = x.shape
        pool = Node("avg_pool2d", [x.name], [node.outputs[0]],
                    {"kernel": (h, w), "stride": (1, 1), "padding": (0, 0, 0, 0), "ceil_mode": False},
                    node.name, node.module_path)
        idx = g.nodes.index(node)
        if node.attrs["keepdim"]:
            g.nodes[idx] = pool
            continue
        pooled = g.add_tensor(Tensor(g.unique_name(f"{node.name}_pooled"), (x.shape[0], c, 1, 1)))
        pool.outputs = [pooled.name]
        reshape = Node("reshape", [pooled.name], [node.outputs[0]], {"shape": [c]},
                       f"{node.name}_flatten", node.module_path)
        g.nodes[idx:idx + 1] = [pool, reshape]
    return g
