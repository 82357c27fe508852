from ..ir import Graph, Node, Tensor
from ..ops import get_op


def lower_global_pool(graph: Graph) -> Graph:
    """Rewrite a reduction over the spatial axes of a 4-D NCHW tensor as the global pooling
    its op names (``OpDef.spatial_pool``: a mean as avg_pool2d, a maximum as max_pool2d), plus
    a reshape when keepdim is False: what TFLite and the C kernels implement."""
    g = graph.copy()
    for node in [n for n in g.nodes if get_op(n.op).spatial_pool]:
        x = g.t(node.inputs[0])
        if len(x.shape) != 4 or sorted(node.attrs["axes"]) != [2, 3]:
            continue
        _, c, h, w = x.shape
        pool = Node(get_op(node.op).spatial_pool, [x.name], [node.outputs[0]],
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
