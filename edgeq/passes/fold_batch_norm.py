import numpy as np

from ..ir import Graph, Node, Tensor
from ..ops import get_op


def fold_batch_norm(graph: Graph) -> Graph:
    """Merge inference batch norm into the weighted layer that feeds it (scale weights, shift
    bias: every such layer keeps one filter per output channel on axis 0); a batch norm anywhere
    else (after a ReLU, on an input) becomes a per-channel affine: a multiply and an add."""
    g = graph.copy()
    for bn in list(g.op_nodes("batch_norm")):
        prod = g.producer(bn.inputs[0])
        gamma, beta, mean, var = (g.t(n).data.astype(np.float64) for n in bn.inputs[1:])
        scale = gamma / np.sqrt(var + bn.attrs["eps"])
        if prod is None or not _has_filters(prod.op) or get_op(prod.op).output_channel_axis(prod, g) != 1 \
                or len(g.consumers(prod.outputs[0])) != 1 or g.is_graph_output(prod.outputs[0]) \
                or prod.attrs.get("activation"):
            _as_affine(g, bn, scale, beta - mean * scale)
            continue
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


def _as_affine(g: Graph, bn: Node, scale: np.ndarray, shift: np.ndarray) -> None:
    """x * scale + shift per channel (axis 1), in place of the batch norm node."""
    rank = len(g.t(bn.inputs[0]).shape)
    shape = (1, -1) + (1,) * (rank - 2)
    s = g.add_constant(f"{bn.name}_scale", scale.astype(np.float32).reshape(shape)).name
    t = g.add_constant(f"{bn.name}_shift", shift.astype(np.float32).reshape(shape)).name
    mid = g.add_tensor(Tensor(g.unique_name(f"{bn.name}_scaled"), g.t(bn.outputs[0]).shape)).name
    i = g.nodes.index(bn)
    g.nodes[i:i + 1] = [Node("mul", [bn.inputs[0], s], [mid], {}, f"{bn.name}_mul", bn.module_path),
                        Node("add", [mid, t], list(bn.outputs), {}, f"{bn.name}_add", bn.module_path)]


def _has_filters(op: str) -> bool:
    """A weighted layer with one filter per output channel on weight axis 0."""
    d = get_op(op)
    return d.weighted and d.filter_axis == 0
