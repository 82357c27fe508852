"""Integer-only static quantization of a float graph, given calibrated activation ranges."""
from __future__ import annotations

from .calibration import scale_zero_point
from .errors import UnsupportedOpError
from .ir import Graph, QuantParams
from .ops import REGISTRY, get_op
from .ops.base import OpDef


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]], options: dict | None = None) -> Graph:
    """Return a quantized copy: int8 activations (per-tensor asymmetric), int8 per-channel
    weights, int32 biases, and each node's integer requantization parameters."""
    options = options or {}
    g = graph.copy()
    for node in g.nodes:
        if type(get_op(node.op)).run_int is OpDef.run_int:
            supported = sorted(k for k, v in REGISTRY.items() if type(v).run_int is not OpDef.run_int)
            raise UnsupportedOpError(f"op '{node.op}' at {node.where()} has no integer kernel; "
                                     f"quantizable ops: {', '.join(supported)}")
    for name in g.inputs:
        _set_act(g, name, *scale_zero_point(*ranges[name]))
    for node in g.nodes:
        op = get_op(node.op)
        for out in node.outputs:
            if op.fixed_output_quant is not None:
                _set_act(g, out, *op.fixed_output_quant)
            elif op.same_quant_as_input:
                q = g.t(node.inputs[0]).quant
                _set_act(g, out, float(q.scale[0]), int(q.zero_point[0]))
            else:
                _set_act(g, out, *scale_zero_point(*ranges[out]))
    for node in g.nodes:
        get_op(node.op).quantize(node, g, options)
    g.quantized = True
    return g


def _set_act(g: Graph, name: str, scale: float, zero_point: int) -> None:
    t = g.t(name)
    t.dtype = "int8"
    t.quant = QuantParams(scale, zero_point)
