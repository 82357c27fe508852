import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph
from ..ops import get_op


def fold_batch_norm(graph: Graph) -> Graph:
    """Merge inference batch norm into the conv2d / conv_transpose2d / linear that feeds it (scale
    weights, shift bias; every layer keeps one filter per output channel on axis 0)."""
    g = graph.copy()
    for bn in list(g.op_nodes("batch_norm")):
        prod = g.producer(bn.inputs[0])
        if prod is None or not _has_filters(prod.op) \
                or len(g.consumers(prod.outputs[0])) != 1 or g.is_graph_output(prod.outputs[0]) \
                or prod.attrs.get("activation"):
            raise UnsupportedOpError(
                f"batch norm {bn.where()} does not follow a conv2d/conv_transpose2d/linear, so it cannot be "
                "folded; edgeq supports batch norm only right after a convolution or linear layer")
        gamma, beta, mean, var = (g.t(n).data.astype(np.float64) for n in bn.inputs[1:])
        scale = gamma / np.sqrt(var + bn.attrs["eps"])
        w, b = g.t(prod.inputs[1]), g.t(prod.inputs[2])
        w_new = w.data.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.data.ndim - 1))
        b_new = (b.data.astype(np.float64) - mean) * scale + beta
        # give folded parameters fresh tensors: the originals might be shared
        prod.inputs[1] = g.add_constant(f"{prod.name}_weight_folded", w_new.astype(np.float32)).name
        prod.inputs[2] = g.add_constant(f"{prod.name}_bias_folded", b_new.astype(np.float32)).name
        g.remove_node(bn)
        g.replace_uses(bn.outputs[0], prod.outputs[0])
        # the folded layer now produces the batch-norm output tensor's name for clarity
    g.prune()
    return g


def _has_filters(op: str) -> bool:
    """A weighted layer with one filter per output channel on weight axis 0."""
    d = get_op(op)
    return d.weighted and d.filter_axis == 0
