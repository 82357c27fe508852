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

An op whose kernels keep a read/write order (``OpDef.traversal``: window ops in raster order,
fully connected rows) may write its output over the input it consumes when that input dies at
the op: the traversal gives the least distance ``lead`` by which the output's start must lie
below the input's start so that no write reaches an input byte still to be read
(``ops.traversal``), and the two buffers may then overlap (``MemoryPlan.overlaps``).  A target
may refuse it per node (``kernel_allows``: the C target refuses kernels with a ``restrict``
pointer).  A step body (a scan's) is planned without overlaps.

``input_in_arena``: the graph inputs live in the arena (one block, at ``input_arena_offset``;
the caller fills it through the model's API before running it) instead of in the caller's
buffer; the block is free once its last reader has run, and the first layer may write over it.

A target may give its kernels *scratch* (``scratch(node, graph)``: bytes, 0 for none; the C
target's im2col buffers): a buffer named ``scratch_name(node)``, in the arena, live during
that node's step only, planned and reported like an activation.

Arena buffers are placed greedily: in a given order, each at the lowest aligned offset where
it overlaps no already placed buffer whose lifetime intersects its own.  Largest-first is TFLite
Micro's GreedyMemoryPlanner; we also try a few other orders (and seeded shuffles) and keep the
smallest arena, so the result is deterministic and never larger than largest-first (overlaps
aside).  The lower bound reported beside the arena size is the largest sum, over arena buffers,
of the bytes of their members live at one step: no placement of these buffers without overlaps
can use less (``lower_bound``); ``overlap_bound`` is the same with each step's overlapping pair
counted by the least span the pair can take.
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
    overlaps: dict[str, tuple[str, int]] = field(default_factory=dict)  # node -> (input, lead bytes)
    input_in_arena: bool = False
    input_arena_offset: int = -1     # where the input block starts in the arena (input_in_arena)
    overlap_bound: int = 0
    live_bytes: list[int] = field(default_factory=list)   # per step -1..len(nodes): sum of live arena bytes
    used_bytes: list[int] = field(default_factory=list)   # per step: arena bytes holding live data

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
            "arena_overlap_bound_bytes": self.overlap_bound,
            "input_in_arena": self.input_in_arena,
            "input_arena_offset": self.input_arena_offset,
            "alignment": ALIGNMENT,
            "input_bytes": self.input_size,
            "output_bytes": self.output_size,
            "tensors": {n: t.to_dict() for n, t in self.tensors.items()},
            "aliased_reshapes": sorted(self.alias_nodes),
            "in_place": dict(sorted(self.inplace_nodes.items())),
            "overlaps": {n: {"input": x, "lead_bytes": d} for n, (x, d) in sorted(self.overlaps.items())},
            "live_bytes_per_step": list(self.live_bytes),
            "used_bytes_per_step": list(self.used_bytes),
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
#: largest area (size x lifetime), then longest-lived, then first-defined, then last-defined
#: (an output is placed before the input it overlaps, which then goes above it); then
#: RANDOM_ORDERS seeded shuffles.
_ORDERS = (
    lambda b, i: (-b["size"], b["first"], i),
    lambda b, i: (-b["size"] * (b["last"] - b["first"] + 1), b["first"], i),
    lambda b, i: (-(b["last"] - b["first"]), -b["size"], i),
    lambda b, i: (b["first"], -b["size"], i),
    lambda b, i: (-b["first"], -b["size"], i),
)

#: (output buffer, input buffer) -> lead: the output may start ``lead`` bytes below the input or lower
Leads = dict[tuple[int, int], int]


def _forbidden(buffers: list[dict], offsets: list[int], i: int, j: int, leads: Leads) -> tuple[int, int]:
    """The open interval of start offsets of buffer ``i`` that placed buffer ``j`` (alive at the
    same time) forbids: their bytes may not meet, except that an output may start ``lead`` below
    the input it overlaps."""
    size_i, size_j, off_j = buffers[i]["size"], buffers[j]["size"], offsets[j]
    if (i, j) in leads:          # i writes over j
        return off_j - min(leads[(i, j)], size_i), off_j + size_j
    if (j, i) in leads:          # j writes over i
        return off_j - size_i, off_j + min(leads[(j, i)], size_j)
    return off_j - size_i, off_j + size_j


def _greedy(buffers: list[dict], order: list[int], leads: Leads | None = None) -> list[int]:
    """Offsets: each buffer in ``order`` at the lowest aligned offset free during its lifetime."""
    leads = leads or {}
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for i in order:
        b = buffers[i]
        forbidden = [f for f in (_forbidden(buffers, offsets, i, j, leads) for j in placed
                                 if buffers[j]["first"] <= b["last"] and b["first"] <= buffers[j]["last"])
                     if f[0] < f[1]]
        # the lowest free start is 0 or the (aligned) end of a forbidden interval
        candidates = sorted({0, *(_align(hi) for _, hi in forbidden if hi > 0)})
        offsets[i] = next(s for s in candidates if all(s <= lo or s >= hi for lo, hi in forbidden))
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


def body_plan(body: Graph, scratch: ScratchFn | None = None) -> MemoryPlan:
    """The plan of a step body (a scan's), inside its node's workspace: no overlaps."""
    return plan_memory(body, overlap=False, scratch=scratch)


def workspace_bytes(node: Node, scratch: ScratchFn | None = None) -> int:
    """Bytes a node's bodies need while it runs: each body's own arena, then its outputs."""
    return sum(_align(p.arena_size) + _align(p.output_size)
               for p in (body_plan(b, scratch) for b in get_op(node.op).bodies(node)))


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


def plan_memory(graph: Graph, input_in_arena: bool = False, overlap: bool = True,
                kernel_allows: Callable[[Node], bool] | None = None,
                scratch: ScratchFn | None = None) -> MemoryPlan:
    """Plan every activation of ``graph`` (quantized, NHWC, int8 / int16 activations), and the
    scratch buffers ``scratch`` asks for.

    ``input_in_arena``: graph inputs in the arena (see the module's docstring); ``overlap``:
    outputs may overlap the inputs their ops consume (``OpDef.traversal``), where
    ``kernel_allows(node)`` (default: always) agrees.

    A slice in place keeps its input's whole buffer for as long as the slice lives, which can
    cost more than it saves: the graph is planned with and without it and the smaller arena
    is kept (without, on a tie)."""
    allows = kernel_allows if overlap else (lambda node: False)
    inputs_inside = input_in_arena and bool(graph.inputs)
    without = _plan(graph, False, inputs_inside, allows, scratch)
    if not any(get_op(n.op).in_place == "prefix" for n in graph.nodes):
        return without
    with_prefix = _plan(graph, True, inputs_inside, allows, scratch)
    return with_prefix if with_prefix.arena_size < without.arena_size else without


def _plan(graph: Graph, prefix_in_place: bool, input_in_arena: bool = False,
          allows: Callable[[Node], bool] | None = None, scratch: ScratchFn | None = None) -> MemoryPlan:
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
    if input_in_arena:   # the caller's input block, one arena buffer until its last reader
        arena.append({"root": None, "first": -1, "size": input_size, "home": None,
                      "last": max(b["last"] for b in buffers if b["home"] is not None and b["home"][0] == "input")})
    index = {b["root"]: k for k, b in enumerate(arena) if b["root"] is not None}

    leads, overlaps, pair = _overlaps(graph, arena, index, uf, group_home, alias_nodes, inplace, input_in_arena,
                                      allows)
    best: tuple[int, list[int]] | None = None
    orders = [sorted(range(len(arena)), key=lambda i: key(arena[i], i)) for key in _ORDERS]
    # the same orders with the kernels' scratch buffers first, and last: small and live for one
    # step, they either take the bottom or fill gaps, instead of pushing the layout around
    scratch_of = {k for k, b in enumerate(arena) if b["root"] is not None and b["root"].endswith(scratch_name(""))}
    if scratch_of:
        orders += [[i for i in o if (i in scratch_of) == first] + [i for i in o if (i in scratch_of) != first]
                   for first in (True, False) for o in orders]
    rng = np.random.default_rng(0)   # a few seeded shuffles: deterministic, often a bit tighter
    orders += [list(rng.permutation(len(arena))) for _ in range(RANDOM_ORDERS)]
    for order in orders:
        offsets = _greedy(arena, [int(i) for i in order], leads)
        total = _align(max((arena[i]["size"] + offsets[i] for i in range(len(arena))), default=0))
        if best is None or total < best[0]:
            best = (total, offsets)
    arena_size, offsets = best if best is not None else (0, [])
    for b, off in zip(arena, offsets):
        b["offset"] = off

    # per step: the bytes of every live arena buffer (its largest member live then: a buffer's
    # members share its start), their sum, the bytes they cover, and the overlapping pair's saving
    steps = range(-1, len(graph.nodes) + 1)
    members_of = {b["root"]: group_members(b["root"]) for b in arena if b["root"] is not None}
    live_bytes, used_bytes, with_overlap = [], [], []
    for step in steps:
        live: dict[int, int] = {}
        for k, b in enumerate(arena):
            if b["root"] is None:
                n_bytes = b["size"] if b["first"] <= step <= b["last"] else 0
            else:
                n_bytes = max((size[n] for n in members_of[b["root"]] if life[n][0] <= step <= life[n][1]),
                              default=0)
            if n_bytes:
                live[k] = n_bytes
        total = sum(live.values())
        live_bytes.append(total)
        used_bytes.append(_covered([(arena[k]["offset"], arena[k]["offset"] + n) for k, n in live.items()]))
        saving = 0
        if step in pair:
            y, x = pair[step]
            saving = live[x] + live[y] - _least_span(live[x], live[y], leads[(y, x)])
        with_overlap.append(total - saving)
    lower = max(live_bytes, default=0)

    tensors: dict[str, TensorPlacement] = {}
    for n in names:
        b = buffers[buf_id[uf.find(n)]]
        region, offset = b["home"] if b["home"] is not None else ("arena", arena[index[b["root"]]]["offset"])
        tensors[n] = TensorPlacement(n, size[n], region, offset, life[n][0], life[n][1], buf_id[uf.find(n)])
    return MemoryPlan(arena_size, lower, tensors, alias_nodes, inplace, input_offsets, output_offsets,
                      output_copies, input_size, output_size, overlaps, input_in_arena,
                      arena[-1]["offset"] if input_in_arena else -1, max(with_overlap, default=0),
                      live_bytes, used_bytes)


def _covered(spans: list[tuple[int, int]]) -> int:
    """Bytes in the union of the half-open ranges ``spans``."""
    covered, end = 0, 0
    for a, b in sorted(spans):
        covered += max(0, b - max(a, end))
        end = max(end, b)
    return covered


def _least_span(x: int, y: int, lead: int) -> int:
    """The fewest bytes an input of ``x`` bytes and an output of ``y`` bytes that may start
    ``lead`` bytes below it can span together."""
    if lead <= 0:
        return max(x, y)
    return max(x + lead, y) if lead < y else x + y


def _overlaps(graph: Graph, arena: list[dict], index: dict[str, int], uf: _UnionFind,
              group_home: Callable[[str], tuple[str, int] | None], alias_nodes: set[str], inplace: dict[str, str],
              input_in_arena: bool, allows: Callable[[Node], bool] | None
              ) -> tuple[Leads, dict[str, tuple[str, int]], dict[int, tuple[int, int]]]:
    """The output-over-input overlaps the ops' traversals allow: a node's output buffer, born at
    its step, over the buffer of the input it traverses, which dies at that step and holds no
    other input of the node (the input block when that input is the one graph input)."""
    leads: Leads = {}
    overlaps: dict[str, tuple[str, int]] = {}
    pairs: dict[int, tuple[int, int]] = {}   # step -> (output buffer, input buffer)
    for step, node in enumerate(graph.nodes):
        if len(node.outputs) != 1 or node.name in inplace or node.name in alias_nodes:
            continue
        trav = get_op(node.op).traversal(node, graph)
        if trav is None or (allows is not None and not allows(node)):
            continue
        x, y = node.inputs[trav.input], node.outputs[0]
        if uf.find(y) not in index:
            continue
        iy = index[uf.find(y)]
        lead = trav.lead()
        if uf.find(x) in index:
            ix = index[uf.find(x)]
        elif input_in_arena and len(graph.inputs) == 1 and (group_home(uf.find(x)) or ("",))[0] == "input":
            ix = len(arena) - 1
        else:
            continue
        others = [n for n in node.inputs if n != x and not graph.t(n).is_constant]
        if (arena[ix]["last"] != step or arena[iy]["first"] != step or lead >= arena[iy]["size"]
                or any(uf.find(n) == uf.find(x) for n in others)):
            continue
        leads[(iy, ix)] = lead
        overlaps[node.name] = (x, lead)
        pairs[step] = (iy, ix)
    return leads, overlaps, pairs
