"""The op registry: each op is defined once (attribute schema, shape rule, float reference,
quantization rule, integer reference kernel, and its roles). Passes, the planner and the targets
ask an op about its roles; they keep no lists of op names. Targets lower ops in their own modules."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np

from ..ir import Graph, Node, QuantParams, Tensor
from ..quant import constant_params, int16_scale, quantize, quantize_value

if TYPE_CHECKING:
    import torch

    from .traversal import Traversal


class Padding(NamedTuple):
    """Explicit spatial padding of a 2-D window op, in elements: the one convention of the IR."""
    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def symmetric(cls, height: int, width: int) -> "Padding":
        return cls(int(height), int(width), int(height), int(width))


#: Attribute kinds. The layout pass remaps ``axis`` / ``axes`` (axes of input 0) and permutes
#: ``per_dim`` lists (one entry per dimension of input 0); ``padding`` is a ``Padding``.
ATTR_KINDS = ("int", "float", "bool", "str", "pair", "padding", "axis", "axes", "per_dim", "perm",
              "shape", "activation", "graph", "any")
REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """One attribute an op's nodes carry from the front end on (integer parameters that
    ``quantize()`` adds later are not part of the schema)."""
    name: str
    kind: str
    default: Any = REQUIRED

    def __post_init__(self) -> None:
        if self.kind not in ATTR_KINDS:
            raise ValueError(f"unknown attribute kind {self.kind!r}")


#: The fused activation every op that accepts one carries (absent or None: no clamp).
ACTIVATION = Attr("activation", "activation", None)


class OpDef:
    """Base class of an op definition. Subclasses override what applies to them."""

    name: str = ""
    #: the attributes of the op's nodes (see ``Attr``); ``check_attrs`` enforces it
    attributes: tuple[Attr, ...] = ()
    #: output must carry the input's quantization (TFLite kernels assume it: pooling, reshape)
    same_quant_as_input: bool = False
    #: fixed output quantization (scale, zero_point), e.g. softmax's 1/256, -128
    fixed_output_quant: tuple[float, int] | None = None
    #: the fixed output quantization of the op's 16x8 form (TFLite's int16 LOGISTIC / TANH: 2^-15, 0)
    fixed_output_quant_int16: tuple[float, int] | None = None
    #: True for ops that only move data (the quantizer and interpreter treat them as copies)
    layout_only: bool = False
    #: set for ops whose output is an integer index tensor (argmax: "int32"), not quantized
    output_dtype: str | None = None
    #: the integer kernel also runs with int16 activations (TFLite's "16x8" mode: int16 inputs
    #: and outputs with zero point 0, int8 weights, int64 bias); see edgeq.passes.precision
    supports_int16: bool = False
    #: inserted by a pass, never traced from a model (``requantize``): not listed for users
    internal: bool = False

    # -- roles: what passes, the memory planner and the targets ask of an op -------------------
    #: a clamp (ReLU, ReLU6, hardtanh) after it can be fused into it (``accepts_activation``)
    fusable_activation: bool = False
    #: inputs are (activation, weight, bias): int8 weights per output channel, a bias per channel
    weighted: bool = False
    #: axis of the output channels in the op's weight (weighted ops: OIHW/OHWI 0, 1HWO 3)
    filter_axis: int | None = None
    #: cross-layer equalization may rescale its channels (conv2d, linear)
    equalizable: bool = False
    #: output element i depends only on input element i and on constants indexed by channel
    #: alone: the op commutes with reshapes that keep dimensions 0 and 1 (``passes.lift_1d``)
    pointwise: bool = False
    #: binary elementwise op with numpy broadcasting (either operand may be a constant)
    broadcasting: bool = False
    #: may write its output over an input it has finished reading: "elementwise" (an input of
    #: the output's shape: output element i is written after input element i is read) or
    #: "prefix" (a smaller output over the start of its input: element k reads addresses >= k)
    in_place: str | None = None
    #: the integer kernel only moves values (reshape, slice, max pool): no rounding of its own
    lossless: bool = False
    #: a reduction that, over the spatial axes of a 4-D NCHW tensor, is this global pooling op
    #: (mean: "avg_pool2d", reduce_max: "max_pool2d"; ``passes.lower_global_pool``)
    spatial_pool: str | None = None
    #: the output is the input's bytes under another shape (reshape): memory plans alias them
    aliases_input: bool = False
    #: the integer kernel is a 256-entry int8 lookup table in ``attrs['table']``
    table: bool = False
    #: the NHWC form of this op when it is a depthwise convolution (groups == input channels)
    depthwise_form: str | None = None

    def check_attrs(self, node: Node) -> None:
        """Fill defaults and refuse missing or unknown attributes (a front-end or pass bug)."""
        known = {a.name for a in self.attributes}
        unknown = sorted(set(node.attrs) - known)
        if unknown:
            raise ValueError(f"{self.name} node {node.name}: unknown attributes {unknown} (schema: {sorted(known)})")
        for a in self.attributes:
            if a.name not in node.attrs:
                if a.default is REQUIRED:
                    raise ValueError(f"{self.name} node {node.name}: missing attribute {a.name!r}")
                node.attrs[a.name] = a.default
            elif a.kind == "padding" and node.attrs[a.name] is not None:
                node.attrs[a.name] = Padding(*(int(v) for v in node.attrs[a.name]))

    def attrs_of_kind(self, *kinds: str) -> list[str]:
        return [a.name for a in self.attributes if a.kind in kinds]

    def accepts_activation(self, activation: dict) -> bool:
        """Can this clamp be fused into the op (``fusable_activation`` ops)?"""
        return self.fusable_activation

    def output_channel_axis(self, node: Node, graph: Graph) -> int:
        """The axis of the output's channels (weighted ops: one per filter)."""
        return 1 if graph.layout == "nchw" else len(graph.t(node.outputs[0]).shape) - 1

    def as_affine(self, node: Node, graph: Graph) -> tuple[str, np.ndarray | None, np.ndarray | None] | None:
        """(activation input, scale, shift) when the node computes ``x * scale`` (shift None)
        or ``x + shift`` (scale None) with a constant, no activation
        (``passes.fold_affine_constants``); None otherwise."""
        return None

    def int16_capable(self, node: Node, graph: Graph) -> bool:
        """Can this node run in 16x8 mode? ``supports_int16``, unless a use of the op is excluded."""
        return self.supports_int16

    def shape(self, node: Node, graph: Graph) -> list[tuple[int, ...]]:
        raise NotImplementedError(self.name)

    def run_float(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(self.name)

    def weighted_torch(self, node: Node, graph: Graph, x: "torch.Tensor", w: "torch.Tensor",
                       b: "torch.Tensor") -> "torch.Tensor | None":
        """A weighted op's float forward on torch tensors of an NCHW graph (differentiable in
        ``w``), fused activation included; None where the op has none (learned rounding,
        ``passes.adaround``, then leaves the layer's rounding to nearest)."""
        return None

    def input_floor(self, node: Node, index: int, x: np.ndarray) -> float | None:
        """A value below which input ``index`` no longer changes the output, for the batch ``x``
        of that input (None: every value matters); calibration takes the smallest over its
        batches and need not reach below it: an attention mask's -10000 would otherwise take
        the whole int8 range."""
        return None

    def adjust_output_quant(self, node: Node, graph: Graph, scale: float, zero_point: int) -> tuple[float, int]:
        """The output quantization to use given the calibrated one (inputs are quantized already).

        Ops whose TFLite kernels derive a multiplier in float in one runtime and in double in
        another move the scale by a few float32 ulps to where both agree."""
        return scale, zero_point

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        """Compute integer parameters (weights, bias, multipliers) into node.attrs / tensors."""

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError(self.name)

    def run(self, node: Node, graph: Graph, xs: list[np.ndarray],
            on_tensor: Callable[[str, np.ndarray], None] | None = None) -> list[np.ndarray]:
        """The integer kernel in a quantized graph, the float reference otherwise (an op with a
        body also shows ``on_tensor`` the body's tensors, for calibration)."""
        return (self.run_int if graph.quantized else self.run_float)(node, graph, xs)

    def bodies(self, node: Node) -> list[Graph]:
        """Subgraphs the node runs (a scan's step); passes and targets recurse into them."""
        return [v for a in self.attributes if a.kind == "graph" for v in [node.attrs.get(a.name)] if v is not None]

    def traversal(self, node: Node, graph: Graph) -> "Traversal | None":
        """The order in which every kernel of the op reads one input while it writes its output
        (``ops.traversal``: the contract the kernels keep), from which the memory planner lets the
        output overlap that input where it dies; None: the output never overlaps an input
        (exact in-place of ``in_place`` ops is planned separately)."""
        return None

    def tied_tensors(self, node: Node, graph: Graph) -> list[list[str]]:
        """Groups of tensors (of the graph and the node's bodies) that must share one
        quantization: a loop's carried state at its start, inside the step and at its end."""
        return []

    def macs(self, node: Node, graph: Graph) -> int:
        return 0


REGISTRY: dict[str, OpDef] = {}


class TableLookup:
    """Mixin of the int8 -> int8 ops computed as a 256-entry table (``attrs['table']``, indexed
    by input + 128): the subclass builds the table in ``_table``; the kernel is a lookup."""
    table = True

    def _table(self, node: Node, graph: Graph) -> np.ndarray:
        raise NotImplementedError

    def quantize(self, node: Node, graph: Graph, options: dict) -> None:
        node.attrs["table"] = self._table(node, graph)

    def run_int(self, node: Node, graph: Graph, xs: list[np.ndarray]) -> list[np.ndarray]:
        return [node.attrs["table"][xs[0].astype(np.int64) + 128]]


def check_graph(graph: Graph) -> None:
    """Every node of ``graph`` (and of its nodes' bodies) within its op's attribute schema."""
    for node in graph.nodes:
        op = get_op(node.op)
        op.check_attrs(node)
        for body in op.bodies(node):
            check_graph(body)


def register(cls: type[OpDef]) -> type[OpDef]:
    REGISTRY[cls.name] = cls()
    return cls


def get_op(name: str) -> OpDef:
    return REGISTRY[name]


def with_bodies(graph: Graph) -> list[Graph]:
    """The graph, then its loops' bodies (and theirs), in node order."""
    return [graph] + [b for n in graph.nodes for body in get_op(n.op).bodies(n) for b in with_bodies(body)]


# --- helpers shared by op definitions --------------------------------------------

def act_quant(graph: Graph, name: str) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized activation."""
    q = graph.t(name).quant
    assert q is not None, f"tensor {name} is not quantized"
    return q.scalar()


def activation_range(node: Node, graph: Graph, out_name: str) -> tuple[int, int]:
    """Integer clamp bounds of a fused activation (TFLite CalculateActivationRangeQuantized)."""
    scale, zp = act_quant(graph, out_name)
    info = np.iinfo(graph.t(out_name).dtype)
    lo, hi = int(info.min), int(info.max)
    act = node.attrs.get("activation")
    if act is None:
        return lo, hi
    a_lo, a_hi = act["min"], act["max"]
    if a_lo is not None:
        lo = max(lo, quantize_value(a_lo, scale, zp))
    if a_hi is not None:
        hi = min(hi, quantize_value(a_hi, scale, zp))
    return lo, hi


def apply_float_activation(node: Node, y: np.ndarray) -> np.ndarray:
    act = node.attrs.get("activation")
    if act is None:
        return y
    lo = -np.inf if act["min"] is None else act["min"]
    hi = np.inf if act["max"] is None else act["max"]
    return np.clip(y, lo, hi).astype(np.float32)


def torch_activation(node: Node, y: "torch.Tensor") -> "torch.Tensor":
    """``apply_float_activation`` on a torch tensor (differentiable)."""
    act = node.attrs.get("activation")
    if act is None or (act["min"] is None and act["max"] is None):
        return y
    return y.clamp(min=act["min"], max=act["max"])


def quantize_constant_operand(graph: Graph, name: str, wide: bool = False) -> None:
    """A float constant read by an activation op -> int8 per tensor over its own range, or
    (``wide``: an operand of a 16x8 node) int16 symmetric, zero point 0."""
    t = graph.t(name)
    if not t.is_constant or t.quant is not None:
        return
    data = t.data.astype(np.float64)
    if wide:
        set_constant(t, int16_scale(float(data.min()), float(data.max())), 0, "int16")
    else:
        set_constant(t, *constant_params(data))


def set_constant(t: Tensor, scale: float, zero_point: int, dtype: str = "int8") -> None:
    """Quantize constant ``t`` (float data) to ``dtype`` with the given parameters, in place."""
    t.data = quantize(t.data.astype(np.float64), scale, zero_point, dtype)
    t.dtype = dtype
    t.quant = QuantParams(scale, zero_point)


def runs_wide(graph: Graph, node: Node) -> bool:
    """Is ``node`` a 16x8 node (int16 output)? Valid from the precision pass on, before and
    after its output is quantized."""
    t = graph.t(node.outputs[0])
    return t.dtype == "int16" or t.int_type == "int16"


def is_int16(graph: Graph, name: str) -> bool:
    """True when activation ``name`` is int16 (the consuming layer runs in 16x8 mode)."""
    return graph.t(name).dtype == "int16"


def conv_out_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    eff = dilation * (kernel - 1) + 1
    span = size + pad_total - eff
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    return out


def to_nchw(x: np.ndarray, graph: Graph) -> np.ndarray:
    """View a 4-D activation in NCHW whatever the graph's layout (kernels compute in NCHW)."""
    return x.transpose(0, 3, 1, 2) if graph.layout == "nhwc" else x


def from_nchw(x: np.ndarray, graph: Graph) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if graph.layout == "nhwc" else x


def spatial_op(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, Graph], np.ndarray]:
    """Wrap an NCHW computation so it runs on a graph of either layout."""
    def run(x: np.ndarray, graph: Graph) -> np.ndarray:
        return from_nchw(fn(to_nchw(x, graph)), graph)
    return run
