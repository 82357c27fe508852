"""Static memory plan of a quantized NHWC graph (the C target's arena; also what mixed
precision reports as the cost of a promotion).

Every activation gets a place:

* ``input`` / ``output``: the caller's buffers of ``NAME_invoke(input, output)``; graph inputs
  live where the caller put them (read only) and graph outputs are written straight into the
  output buffer (several outputs: concatenated in graph order).
* ``arena``: one static byte array inside ``NAME.c``, at a fixed offset.

Steps are node indices in execution order.  A tensor is live from the step that produces it
(graph inputs: before step 0) to its last consumer.  Tensors are grouped into *buffers*
(one piece of memory each):

* the output of an op that reinterprets its input's bytes (``OpDef.aliases_input``: reshape)
  aliases its input (no code runs) unless that would put one buffer in two places (e.g. a graph
  input that is also reshaped into a graph output): then it is a copy;
* an op with ``OpDef.in_place == "elementwise"`` (clamp, add, sub, mul, maximum, minimum, the
  activations, softmax, log-softmax) writes over an input whose buffer dies at that op, when
  that input has the output's shape (a broadcast operand is never overwritten) and its buffer
  is in the arena; one with ``in_place == "prefix"`` (slice) writes over the start of such an
  input.

A target may give its kernels *scratch* (``scratch(node, graph)``: bytes, 0 for none; the C
target's im2col buffers): a buffer named ``scratch_name(node)``, in the arena, live during
that node's step only, planned and reported like an activation.

Arena buffers are placed greedily: in a given order, each at the lowest aligned offset where
it overlaps no already placed buffer whose lifetime intersects its own.  Largest-first is TFLite
Micro's GreedyMemoryPlanner; we also try a few other orders (and seeded shuffles) and keep the
smallest arena, so the result is deterministic and never larger than largest-first.  The lower
bound reported beside the arena size is the largest sum, over arena buffers, of the bytes of
their members live at one step: no placement of these buffers can use less.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .ir import Graph, Node
from .ops import get_op

#: Offsets and the arena size are multiples of this many bytes.
ALIGNMENT = 4

#: Seeded random placement orders tried besides the heuristic ones.
RANDOM_ORDERS = 32

#: A target's scratch bytes for the kernel of a node (0: none).
ScratchFn = Callable[[Node, Graph], int]


@dataclass
class TensorPlacement:
    name: str
    size: int                 # bytes (int8 elements)
    region: str               # "arena" | "input" | "output"
    offset: int               # byte offset within the region
    first: int                # step that produces it (-1: graph input)
    last: int                 # step of its last use (len(nodes): graph output, read by the caller)
    buffer: int               # buffer id; tensors with the same id share memory

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "offset": self.offset, "size": self.size,
                "first_use": self.first, "last_use": self.last, "buffer": self.buffer}


@dataclass
class MemoryPlan:
    arena_size: int
    lower_bound: int
    tensors: dict[str, TensorPlacement]
    alias_nodes: set[str] = field(default_factory=set)          # reshapes that run no code
    inplace_nodes: dict[str, str] = field(default_factory=dict)  # node -> input it overwrites
    input_offsets: list[int] = field(default_factory=list)      # per graph input, in the input buffer
    output_offsets: list[int] = field(default_factory=list)     # per graph output slot
    output_copies: list[tuple[str, int]] = field(default_factory=list)  # (tensor, output slot)
    input_size: int = 0
    output_size: int = 0

    def buffer_lifetimes(self) -> dict[int, tuple[int, int, int, str, int]]:
        """buffer id -> (first, last, size, region, offset)."""
        out: dict[int, tuple[int, int, int, str, int]] = {}
        for t in self.tensors.values():
            if t.buffer in out:
                f, l, s, r, o = out[t.buffer]
                out[t.buffer] = (min(f, t.first), max(l, t.last), max(s, t.size), r, o)
            else:
                out[t.buffer] = (t.first, t.last, t.size, t.region, t.offset)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "arena_bytes": self.arena_size,
            "arena_lower_bound_bytes": self.lower_bound,
            "alignment": ALIGNMENT,
            "input_bytes": self.input_size,
            "output_bytes": self.output_size,
            "tensors": {n: t.to_dict() for n, t in self.tensors.items()},
            "aliased_reshapes": sorted(self.alias_nodes),
            "in_place": dict(sorted(self.inplace_nodes.items())),
        }


class _UnionFind:
    def __init__(self, names: list[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


#: Placement orders tried (the smallest arena wins): largest first as TFLite Micro does, then
#: largest area (size x lifetime), then longest-lived, then first-defined; then RANDOM_ORDERS
#: seeded shuffles.
_ORDERS = (
    lambda b, i: (-b["size"], b["first"], i),
    lambda b, i: (-b["size"] * (b["last"] - b["first"] + 1), b["first"], i),
    lambda b, i: (-(b["last"] - b["first"]), -b["size"], i),
    lambda b, i: (b["first"], -b["size"], i),
)


def _greedy(buffers: list[dict], order: list[int]) -> list[int]:
    """Offsets: each buffer in ``order`` at the lowest aligned offset free during its lifetime."""
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        conflicts = sorted((j for j in placed
                            if buffers[j]["first"] <= b["last"] and b["first"] <= buffers[j]["last"]),
                           key=lambda j: offsets[j])
        offset = 0
        for j in conflicts:
            if offset + b["size"] <= offsets[j]:
                break
            offset = max(offset, _align(offsets[j] + buffers[j]["size"]))
        offsets[i] = offset
        placed.append(i)
    return offsets


def scratch_name(node_name: str) -> str:
    """The plan's name of the scratch buffer a node's kernel works in."""
    return f"{node_name}/scratch"


def scratch_bytes(graph: Graph, scratch: ScratchFn | None) -> dict[str, int]:
    """Scratch buffer name -> bytes, for the nodes whose kernels ask for scratch."""
    if scratch is None:
        return {}
    sizes = {scratch_name(n.name): int(scratch(n, graph)) for n in graph.nodes}
    return {k: v for k, v in sizes.items() if v > 0}


def workspace_name(node_name: str) -> str:
    """The plan's name of the working memory a node with a body (a scan's step) needs."""
    return f"{node_name}/workspace"


def workspace_bytes(node: Node, scratch: ScratchFn | None = None) -> int:
    """Bytes a node's bodies need while it runs: each body's own arena, then its outputs."""
    return sum(_align(p.arena_size) + _align(p.output_size)
               for p in (plan_memory(b, scratch) for b in get_op(node.op).bodies(node)))


def lifetimes(graph: Graph, scratch: ScratchFn | None = None) -> dict[str, tuple[int, int]]:
    """Activation -> (first step, last step); graph inputs start at -1, outputs end at len(nodes).
    A node with a body also has a workspace that lives during its own step, and a node's
    scratch (``scratch``) lives during its own step."""
    end = len(graph.nodes)
    scratch_of = scratch_bytes(graph, scratch)
    life: dict[str, list[int]] = {n: [-1, -1] for n in graph.inputs}
    for i, node in enumerate(graph.nodes):
        for o in node.outputs:
            life[o] = [i, i]
        if get_op(node.op).bodies(node):
            life[workspace_name(node.name)] = [i, i]
        if scratch_name(node.name) in scratch_of:
            life[scratch_name(node.name)] = [i, i]
    for i, node in enumerate(graph.nodes):
        for x in node.inputs:
            if x in life:
                life[x][1] = max(life[x][1], i)
    for o in graph.outputs:
        life[o][1] = end
    return {n: (a, b) for n, (a, b) in life.items()}


def plan_memory(graph: Graph, scratch: ScratchFn | None = None) -> MemoryPlan:
    """Plan every activation of ``graph`` (quantized, NHWC, int8 activations), and the scratch
    buffers ``scratch`` asks for.

    A slice in place keeps its input's whole buffer for as long as the slice lives, which can
    cost more than it saves: the graph is planned with and without it and the smaller arena
    is kept (without, on a tie)."""
    without = _plan(graph, False, scratch)
    if not any(get_op(n.op).in_place == "prefix" for n in graph.nodes):
        return without
    with_prefix = _plan(graph, True, scratch)
    return with_prefix if with_prefix.arena_size < without.arena_size else without


def _plan(graph: Graph, prefix_in_place: bool, scratch: ScratchFn | None) -> MemoryPlan:
    life = lifetimes(graph, scratch)
    names = list(life)
    size = scratch_bytes(graph, scratch)
    size.update({n: graph.t(n).size * np.dtype(graph.t(n).dtype).itemsize for n in names if n in graph.tensors})
    size.update({workspace_name(n.name): workspace_bytes(n, scratch) for n in graph.nodes if get_op(n.op).bodies(n)})
    uf = _UnionFind(names)

    # external homes: (region, offset) per graph input / first occurrence of each graph output
    input_offsets, off = [], 0
    home: dict[str, tuple[str, int]] = {}
    for n in graph.inputs:
        input_offsets.append(off)
        home.setdefault(n, ("input", off))
        off += size[n]
    input_size = off
    output_offsets, output_copies, off = [], [], 0
    for slot, n in enumerate(graph.outputs):
        output_offsets.append(off)
        if n in home:   # a graph input, or an output listed twice: copied at the end
            output_copies.append((n, slot))
        else:
            home[n] = ("output", off)
        off += size[n]
    output_size = off

    def group_home(root: str) -> tuple[str, int] | None:
        homes = {home[n] for n in names if n in home and uf.find(n) == root}
        return next(iter(homes)) if homes else None

    def group_members(root: str) -> list[str]:
        return [n for n in names if uf.find(n) == root]

    alias_nodes: set[str] = set()
    for node in graph.nodes:
        if not get_op(node.op).aliases_input:
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if src not in life or size[src] != size[dst]:
            continue
        h_src, h_dst = group_home(uf.find(src)), group_home(uf.find(dst))
        if h_src is not None and h_dst is not None and h_src != h_dst:
            continue          # both sides already have different homes: copy
        # otherwise one home (or none) for the merged buffer: e.g. the producer of a reshaped
        # graph output writes straight into the output buffer
        uf.union(src, dst)
        alias_nodes.add(node.name)

    def group_last(root: str) -> int:
        return max(life[n][1] for n in group_members(root))

    inplace: dict[str, str] = {}
    for step, node in enumerate(graph.nodes):
        mode = get_op(node.op).in_place
        prefix = prefix_in_place and mode == "prefix"
        if (mode != "elementwise" and not prefix) or len(node.outputs) != 1:
            continue
        out = node.outputs[0]
        if group_home(uf.find(out)) is not None:
            continue
        for x in node.inputs:
            if x not in life:
                continue
            if prefix and size[out] > size[x]:
                continue
            if not prefix and (graph.t(x).shape != graph.t(out).shape or size[x] != size[out]):
                continue
            rx = uf.find(x)
            if rx == uf.find(out) or group_home(rx) is not None or group_last(rx) != step:
                continue
            uf.union(x, out)
            inplace[node.name] = x
            break

    # buffers
    roots = list(dict.fromkeys(uf.find(n) for n in names))
    buf_id = {r: i for i, r in enumerate(roots)}
    buffers = []
    for r in roots:
        members = group_members(r)
        buffers.append({"root": r, "first": min(life[n][0] for n in members),
                        "last": max(life[n][1] for n in members),
                        "size": max(size[n] for n in members), "home": group_home(r)})

    arena = [b for b in buffers if b["home"] is None]
    best: tuple[int, list[int]] | None = None
    orders = [sorted(range(len(arena)), key=lambda i: key(arena[i], i)) for key in _ORDERS]
    rng = np.random.default_rng(0)   # a few seeded shuffles: deterministic, often a bit tighter
    orders += [list(rng.permutation(len(arena))) for _ in range(RANDOM_ORDERS)]
    for order in orders:
        offsets = _greedy(arena, [int(i) for i in order])
        total = _align(max((arena[i]["size"] + offsets[i] for i in range(len(arena))), default=0))
        if best is None or total < best[0]:
            best = (total, offsets)
    arena_size, offsets = best if best is not None else (0, [])
    for b, off in zip(arena, offsets):
        b["offset"] = off

    # per step and arena buffer, the largest member live then (a buffer's members share its start)
    steps = range(-1, len(graph.nodes) + 1)
    arena_roots = {b["root"] for b in arena}
    live_bytes = [0] * len(steps)
    for root in arena_roots:
        members = group_members(root)
        for k, step in enumerate(steps):
            live_bytes[k] += max((size[n] for n in members if life[n][0] <= step <= life[n][1]), default=0)
    lower = max(live_bytes, default=0)

    tensors: dict[str, TensorPlacement] = {}
    for n in names:
        b = buffers[buf_id[uf.find(n)]]
        region, offset = b["home"] if b["home"] is not None else ("arena", b["offset"])
        tensors[n] = TensorPlacement(n, size[n], region, offset, life[n][0], life[n][1], buf_id[uf.find(n)])
    return MemoryPlan(arena_size, lower, tensors, alias_nodes, inplace, input_offsets, output_offsets,
                      output_copies, input_size, output_size)
