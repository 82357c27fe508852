"""edgeq's graph IR: tensors, nodes and a graph. Small and plain on purpose.

A tensor has a name, a shape, a dtype, optional constant data and optional quantization
parameters. A node has an op name, input and output tensor names, attributes, and the
``nn.Module`` path it came from (for error messages and reports). Dimension 0 of every
activation is the batch dimension; shapes are recorded with batch 1.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np


@dataclass
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point).

    ``scale`` is float32 (what the TFLite flatbuffer stores, so multipliers derived from it
    match the runtimes); ``axis`` is the channel axis for per-channel parameters, else None.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self) -> None:
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def scalar(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantization."""
        if self.per_channel:
            raise ValueError("per-channel parameters have no single scale")
        return float(self.scale[0]), int(self.zero_point[0])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"scale": [float(s) for s in self.scale],
                             "zero_point": [int(z) for z in self.zero_point]}
        if self.axis is not None:
            d["axis"] = self.axis
        return d


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None
    quant: QuantParams | None = None
    #: integer type the quantizer gives this activation ("int16": a 16x8 layer's, chosen by
    #: ``passes.precision``); None: the default, int8
    int_type: str | None = None
    #: the tensor whose calibrated range this one shares (a ``requantize`` copy of it)
    range_of: str | None = None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Node:
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    module_path: str = ""

    def where(self) -> str:
        """Human description of where this node came from, for errors."""
        return f"'{self.name}' (module '{self.module_path or '<top level>'}')"


@dataclass
class Graph:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    layout: str = "nchw"          # layout of 4-D activations: "nchw" (torch) or "nhwc"
    quantized: bool = False
    #: layout of 4-D graph inputs in an NHWC graph: "nhwc", or "nchw" (kept in torch's layout
    #: and transposed inside the graph: ``passes.to_nhwc(..., input_layout="nchw")``)
    input_layout: str = "nhwc"

    # -- construction -------------------------------------------------------------
    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise ValueError(f"duplicate tensor name {t.name}")
        self.tensors[t.name] = t
        return t

    def add_constant(self, name: str, data: np.ndarray) -> Tensor:
        name = self.unique_name(name)
        return self.add_tensor(Tensor(name, tuple(data.shape), str(data.dtype), data))

    def unique_name(self, base: str) -> str:
        if base not in self.tensors:
            return base
        i = 1
        while f"{base}_{i}" in self.tensors:
            i += 1
        return f"{base}_{i}"

    # -- queries ------------------------------------------------------------------
    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def producer(self, tensor: str) -> Node | None:
        for n in self.nodes:
            if tensor in n.outputs:
                return n
        return None

    def consumers(self, tensor: str) -> list[Node]:
        return [n for n in self.nodes if tensor in n.inputs]

    def use_counts(self) -> dict[str, int]:
        """How many node inputs read each tensor (a tensor read twice by one node counts twice)."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            for n in node.inputs:
                counts[n] = counts.get(n, 0) + 1
        return counts

    def is_graph_output(self, tensor: str) -> bool:
        return tensor in self.outputs

    def op_nodes(self, op: str) -> Iterator[Node]:
        return (n for n in list(self.nodes) if n.op == op)

    # -- edits --------------------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        """Make every consumer (and the graph outputs) read ``new`` instead of ``old``."""
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)

    def prune(self) -> None:
        """Drop nodes whose outputs nobody uses and tensors nobody references."""
        changed = True
        while changed:
            used = set(self.outputs)
            for n in self.nodes:
                used.update(n.inputs)
            keep = [n for n in self.nodes if any(o in used for o in n.outputs)]
            changed = len(keep) != len(self.nodes)
            self.nodes = keep
        referenced = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            referenced.update(n.inputs)
            referenced.update(n.outputs)
        self.tensors = {k: v for k, v in self.tensors.items() if k in referenced}

    def share_identical_constants(self) -> None:
        """Make nodes that read equal constants (same values, type and quantization) read one
        tensor: an unrolled RNN reads its weights at every time step, and every target then
        stores them once."""
        first: dict[tuple, str] = {}
        for node in self.nodes:
            for k, name in enumerate(node.inputs):
                t = self.tensors[name]
                if not t.is_constant:
                    continue
                q = t.quant
                key = (t.dtype, t.shape, hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest(),
                       None if q is None else (q.scale.tobytes(), q.zero_point.tobytes(), q.axis))
                node.inputs[k] = first.setdefault(key, name)
        self.prune()

    def copy(self) -> "Graph":
        return copy.deepcopy(self)

    def range_source(self, name: str) -> str:
        """The tensor whose calibrated range ``name`` uses (itself unless a requantized copy)."""
        return self.tensors[name].range_of or name

    def activations(self) -> list[str]:
        """Non-constant tensors in execution order: graph inputs first, then node outputs."""
        names = list(self.inputs)
        for n in self.nodes:
            names.extend(n.outputs)
        return names

    def summary(self) -> str:
        lines = [f"graph ({self.layout}, {'int' if self.quantized else 'float'}): "
                 f"inputs {self.inputs} outputs {self.outputs}"]
        for n in self.nodes:
            shapes = [self.tensors[o].shape for o in n.outputs]
            lines.append(f"  {n.name}: {n.op}({', '.join(n.inputs)}) -> {n.outputs} {shapes}")
        return "\n".join(lines)
