"""The C target's lowering table: IR op -> the kernels it calls and the function that writes
its layer (parameter struct fields and calls).  ``@lowers`` registers an entry, in the style of
the ONNX and TFLite targets.  A kernel's parameter struct, header and return type are read from
the kernel headers (``cheaders.Kernel``), never restated here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ....ir import Graph, Node
from ....ops import get_op
from ..cheaders import Kernel, kernel  # noqa: F401  (the lowering modules import both from here)

if TYPE_CHECKING:
    from ..layer import LayerCode


LowerFn = Callable[["LayerCode"], None]
#: the scratch bytes the kernel a node's layer calls works in (0: none)
ScratchFn = Callable[[Node, Graph], int]


@dataclass(frozen=True)
class Lowering:
    """How one IR op becomes C: ``build`` writes the layer, calling only ``kernels`` (int8
    layers) and ``int16_kernels`` (16x8 layers; empty: the op has no 16x8 kernel);
    ``int32_inputs``: it reads int32 activations (token ids, masks) as 4 little-endian bytes.

    ``scratch``: the bytes of arena scratch the kernel the layer calls needs (its header names
    the function computing it); the memory planner asks (``kernel_scratch``)."""
    op: str
    build: LowerFn
    kernels: tuple[Kernel, ...]
    int16_kernels: tuple[Kernel, ...] = ()
    int32_inputs: bool = False
    scratch: ScratchFn | None = None

    @property
    def int16(self) -> bool:
        return bool(self.int16_kernels)

    def files(self, int16: bool = False) -> set[str]:
        return {f for k in (self.int16_kernels if int16 else self.kernels) for f in k.files}

    @property
    def all_kernels(self) -> tuple[Kernel, ...]:
        return self.kernels + self.int16_kernels


LOWERINGS: dict[str, Lowering] = {}


def lowers(op: str, kernels: tuple[Kernel, ...] = (), int16: tuple[Kernel, ...] = (),
           int32_inputs: bool = False, scratch: ScratchFn | None = None) -> Callable[[LowerFn], LowerFn]:
    """Register ``fn`` as the lowering of ``op``, which calls ``kernels`` (and ``int16`` in
    16x8 layers); ``int32_inputs``: its kernels take int32 activations (ids); ``scratch``: its
    kernel's scratch bytes (``Lowering``)."""
    def deco(fn: LowerFn) -> LowerFn:
        LOWERINGS[op] = Lowering(op, fn, tuple(kernels), tuple(int16), int32_inputs, scratch)
        return fn
    return deco


def allows_overlap(node: Node, graph: Graph) -> bool:
    """May the memory plan overlap this node's output with the input its op traverses
    (``OpDef.traversal``)?  Only when every kernel its lowering may call for the node's precision
    declares no ``restrict`` pointer (C's rules forbid a restrict output over a read input)."""
    entry = LOWERINGS.get(node.op)
    if entry is None:
        return False
    int16 = any(graph.t(n).dtype == "int16" for n in [*node.inputs, *node.outputs] if not graph.t(n).is_constant)
    kernels = entry.int16_kernels if int16 else entry.kernels
    return bool(kernels) and all(k.overlap_safe for k in kernels)


def kernel_scratch(node: Node, graph: Graph) -> int:
    """Bytes of arena scratch the kernel of ``node``'s layer needs (``memory_plan.ScratchFn``)."""
    entry = LOWERINGS.get(node.op)
    return int(entry.scratch(node, graph)) if entry is not None and entry.scratch is not None else 0


def supported_ops() -> list[str]:
    """Model ops the C target lowers (ops only passes insert, such as ``requantize``, not listed)."""
    return sorted(op for op in LOWERINGS if not get_op(op).internal)


def int16_ops() -> list[str]:
    """Ops the C target runs with int16 activations (the int8 <-> int16 ``requantize`` included)."""
    return sorted(op for op, entry in LOWERINGS.items() if entry.int16)


def int32_input_ops() -> list[str]:
    """Ops whose C kernels read int32 activations (token ids, masks)."""
    return sorted(op for op, entry in LOWERINGS.items() if entry.int32_inputs)


def kernel_files(int16: bool = False) -> set[str]:
    """Every kernel source of the int8 (or 16x8) kernels the table names."""
    return {f for entry in LOWERINGS.values() for f in entry.files(int16)}
