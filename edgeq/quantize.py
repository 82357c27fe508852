"""Integer-only static quantization of a float graph, given calibrated activation ranges."""
from __future__ import annotations


from .errors import UnsupportedOpError
from .ir import Graph, QuantParams, Tensor
from .ops import REGISTRY, get_op
from .ops.base import OpDef
from .quant import int16_scale, scale_zero_point

#: integer graph inputs (token ids, attention masks) as the front end types them; they are
#: int32 in the quantized graph and in every artifact (TFLite's integer index type)
INTEGER_INPUTS = ("int32", "int64")


def quantize(graph: Graph, ranges: dict[str, tuple[float, float]], options: dict | None = None,
             observed: dict[str, tuple[float, float]] | None = None,
             tied: dict[str, tuple[float, int, str]] | None = None) -> Graph:
    """Return a quantized copy: int8 activations (per-tensor asymmetric), int8 per-channel
    weights, int32 biases, and each node's integer requantization parameters.

    Activations with ``int_type == "int16"`` (see ``edgeq.passes.precision``) are int16,
    symmetric (zero point 0) over their ``observed`` min/max (default: ``ranges``): 16 bits
    leave no reason to clip.

    Ops with a body (a scan's step) have it quantized with the same ranges; tensors the op ties
    together (a carried state's initial, inner and final values) share one quantization over
    the union of their ranges (``tied``: the ties already decided, for a body)."""
    options = options or {}
    g = graph.copy()
    int16 = {n for n, t in g.tensors.items() if t.int_type == "int16"}
    observed = observed or getattr(ranges, "observed", None) or ranges
    tied = {**(tied or {}), **_ties(g, ranges, observed)}

    def act_params(name: str) -> tuple[float, int]:
        if name in tied:
            return tied[name][:2]
        src = g.range_source(name)
        if name in int16:
            return int16_scale(*observed[src]), 0
        return scale_zero_point(*ranges[src])

    for node in g.nodes:
        if type(get_op(node.op)).run_int is OpDef.run_int:
            supported = sorted(k for k, v in REGISTRY.items() if type(v).run_int is not OpDef.run_int)
            raise UnsupportedOpError(f"op '{node.op}' at {node.where()} has no integer kernel; "
                                     f"quantizable ops: {', '.join(supported)}")
    _unshare_constants(g)
    for name in g.inputs:
        if name in tied:
            _set_act(g, name, *tied[name])
        elif g.t(name).dtype in INTEGER_INPUTS:     # token ids, masks: int32 integers, no scale
            g.t(name).dtype, g.t(name).quant = "int32", None
        else:
            _set_act(g, name, *act_params(name))
    for node in g.nodes:
        op = get_op(node.op)
        for out in node.outputs:
            if op.output_dtype is not None:      # an index output (argmax): integers, no quantization
                g.t(out).dtype, g.t(out).quant = op.output_dtype, None
            elif out in int16 and op.fixed_output_quant_int16 is not None:
                _set_act(g, out, *op.fixed_output_quant_int16, "int16")
            elif op.fixed_output_quant is not None:
                _set_act(g, out, *op.fixed_output_quant)
            elif op.same_quant_as_input and g.t(node.inputs[0]).quant is None:   # moves integers (a mask)
                g.t(out).dtype, g.t(out).quant = g.t(node.inputs[0]).dtype, None
            elif op.same_quant_as_input:
                src = g.t(node.inputs[0])
                _set_act(g, out, float(src.quant.scale[0]), int(src.quant.zero_point[0]), src.dtype)
            elif out in tied:
                _set_act(g, out, *tied[out])
            elif out in int16:     # adjusted like int8 outputs (MUL's float/double agreement)
                _set_act(g, out, *op.adjust_output_quant(node, g, *act_params(out)), "int16")
            else:
                _set_act(g, out, *op.adjust_output_quant(node, g, *act_params(out)))
    for node in g.nodes:
        op = get_op(node.op)
        for a in op.attributes:
            if a.kind == "graph":
                node.attrs[a.name] = quantize(node.attrs[a.name], ranges, options, observed, tied)
        op.quantize(node, g, options)
    g.share_identical_constants()
    g.quantized = True
    return g


def _ties(g: Graph, ranges: dict, observed: dict) -> dict[str, tuple[float, int, str]]:
    """(scale, zero point, dtype) of every tensor an op ties to others: one quantization over
    the union of the group's ranges (int16, symmetric, when any member is int16)."""
    out: dict[str, tuple[float, int, str]] = {}
    for node in g.nodes:
        op = get_op(node.op)
        bodies = op.bodies(node)
        for group in op.tied_tensors(node, g):
            members = [m for m in group if not _constant(m, g, bodies)]
            wide = any(_tensor(m, g, bodies).int_type == "int16" for m in members)
            source = observed if wide else ranges
            lo = min(source[m][0] for m in members if m in source)
            hi = max(source[m][1] for m in members if m in source)
            params = (int16_scale(lo, hi), 0, "int16") if wide else (*scale_zero_point(lo, hi), "int8")
            out.update({m: params for m in members})
    return out


def _tensor(name: str, g: Graph, bodies: list[Graph]) -> Tensor:
    return g.tensors[name] if name in g.tensors else next(b.tensors[name] for b in bodies if name in b.tensors)


def _constant(name: str, g: Graph, bodies: list[Graph]) -> bool:
    return _tensor(name, g, bodies).is_constant


def _unshare_constants(g: Graph) -> None:
    """Give each node its own copy of a constant another node also reads (a module called
    twice shares its weights; each use is quantized with its own input scale)."""
    seen: set[str] = set()
    for node in g.nodes:
        for k, name in enumerate(node.inputs):
            t = g.t(name)
            if not t.is_constant:
                continue
            if name in seen:
                copy = g.add_tensor(Tensor(g.unique_name(f"{name}_{node.name}"), t.shape, t.dtype,
                                           t.data.copy(), t.quant))
                node.inputs[k] = copy.name
            else:
                seen.add(name)


def _set_act(g: Graph, name: str, scale: float, zero_point: int, dtype: str = "int8") -> None:
    t = g.t(name)
    t.dtype = dtype
    t.quant = QuantParams(scale, zero_point)
