"""Memory planner of the C target, checked independently of how it plans."""
from __future__ import annotations

import numpy as np
import pytest

from c_target_helpers import example
from edgeq.ir import Graph, Node, QuantParams, Tensor
from edgeq.memory_plan import ALIGNMENT, plan_memory
from edgeq.ops import get_op
from examples.models import MODELS


def _life(graph: Graph) -> dict[str, tuple[int, int]]:
    """Each activation's own lifetime, recomputed here: produced at step p, read until step q."""
    end = len(graph.nodes)
    life = {n: [-1, -1] for n in graph.inputs}
    for i, node in enumerate(graph.nodes):
        for o in node.outputs:
            life[o] = [i, i]
        for x in node.inputs:
            if x in life:
                life[x][1] = i
    for o in graph.outputs:
        life[o][1] = end
    return {k: (a, b) for k, (a, b) in life.items()}


def check_plan(graph: Graph) -> None:
    plan = plan_memory(graph)
    life = _life(graph)
    ts = plan.tensors
    assert set(ts) == set(life)
    producer = {o: (i, n) for i, n in enumerate(graph.nodes) for o in n.outputs}

    for name, t in ts.items():
        size = graph.t(name).size
        assert t.size == size
        if t.region == "arena":
            assert t.offset % ALIGNMENT == 0 and 0 <= t.offset and t.offset + size <= plan.arena_size
        elif t.region == "input":
            assert t.offset + size <= plan.input_size
            # nothing is ever written into the caller's input buffer
            assert name in graph.inputs or producer[name][1].op == "reshape"
        else:
            assert t.offset + size <= plan.output_size
    # every graph output ends up in its slot of the output buffer (directly or by a copy)
    copies = {slot for _, slot in plan.output_copies}
    for slot, name in enumerate(graph.outputs):
        t = ts[name]
        assert slot in copies or (t.region == "output" and t.offset == plan.output_offsets[slot])

    # replay the execution: every write may only clobber bytes nobody needs any more
    def overlaps(a: str, b: str) -> bool:
        ta, tb = ts[a], ts[b]
        return ta.region == tb.region and ta.offset < tb.offset + tb.size and tb.offset < ta.offset + ta.size

    def same_bytes(a: str, b: str) -> bool:
        return (ts[a].region, ts[a].offset, ts[a].size) == (ts[b].region, ts[b].offset, ts[b].size)

    for step, node in enumerate(graph.nodes):
        y = node.outputs[0]
        if node.op == "reshape" and node.name in plan.alias_nodes:
            assert same_bytes(node.inputs[0], y)       # an alias: nothing is written
            continue
        assert ts[y].region != "input", f"{node.name} writes into the caller's input"
        for z in ts:
            if z == y or not overlaps(y, z):
                continue
            first, last = life[z]
            if last < step or first > step:
                continue                                # dead already, or not produced yet
            in_place = z in node.inputs and last == step and (
                (get_op(node.op).in_place == "elementwise" and same_bytes(z, y))
                or (get_op(node.op).in_place == "prefix" and ts[z].region == ts[y].region
                    and ts[z].offset == ts[y].offset and ts[y].size <= ts[z].size))
            assert in_place, f"{node.name} (step {step}) overwrites {z}, live {first}-{last}"

    # lower bound: the largest number of distinct arena bytes holding live data at one step
    lb = 0
    for step in range(-1, len(graph.nodes) + 1):
        live = sorted((ts[n].offset, ts[n].offset + ts[n].size) for n in ts
                      if ts[n].region == "arena" and life[n][0] <= step <= life[n][1])
        covered, end = 0, 0          # size of the union of the live byte ranges
        for a, b in live:
            covered += max(0, b - max(a, end))
            end = max(end, b)
        lb = max(lb, covered)
    assert plan.lower_bound == lb <= plan.arena_size


@pytest.mark.parametrize("name", sorted(MODELS))
def test_plan_of_example_models(name: str) -> None:
    check_plan(example(name).graph)


def _q(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, shape, "int8", None, QuantParams(0.05, 0))


def _graph(tensors: list[Tensor], nodes: list[Node], inputs: list[str], outputs: list[str]) -> Graph:
    g = Graph({t.name: t for t in tensors}, nodes, inputs, outputs, layout="nhwc", quantized=True)
    return g


def test_relu_runs_in_place_and_reshape_aliases() -> None:
    g = _graph([_q("x", (1, 64)), _q("a", (1, 64)), _q("b", (1, 64)), _q("c", (1, 8, 8)), _q("y", (1, 8, 8))],
               [Node("clamp", ["x"], ["a"], name="copy_in"),
                Node("clamp", ["a"], ["b"], name="relu"),
                Node("reshape", ["b"], ["c"], {"shape": [8, 8]}, name="view"),
                Node("clamp", ["c"], ["y"], name="relu_out")],
               ["x"], ["y"])
    plan = plan_memory(g)
    assert plan.inplace_nodes == {"relu": "a"}
    assert plan.alias_nodes == {"view"}
    assert plan.tensors["a"].offset == plan.tensors["b"].offset == plan.tensors["c"].offset
    assert plan.arena_size == plan.lower_bound == 64
    assert plan.tensors["x"].region == "input" and plan.tensors["y"].region == "output"
    check_plan(g)


def test_no_in_place_over_a_tensor_still_needed() -> None:
    # a is read again by the add after the relu: the relu must not overwrite it
    g = _graph([_q("x", (1, 16)), _q("a", (1, 16)), _q("b", (1, 16)), _q("y", (1, 16))],
               [Node("clamp", ["x"], ["a"], name="c0"),
                Node("clamp", ["a"], ["b"], name="relu"),
                Node("add", ["a", "b"], ["y"], name="add")],
               ["x"], ["y"])
    plan = plan_memory(g)
    assert "relu" not in plan.inplace_nodes
    assert plan.tensors["a"].offset != plan.tensors["b"].offset
    check_plan(g)


def test_add_in_place_into_dead_input_and_alias_keeps_buffer_alive() -> None:
    # r aliases a (reshape); a dies at the add but r lives on: no in place into a's buffer
    g = _graph([_q("x", (1, 16)), _q("a", (1, 16)), _q("b", (1, 16)), _q("r", (1, 4, 4)),
                _q("s", (1, 16)), _q("y", (1, 4, 4)), _q("z", (1, 16))],
               [Node("clamp", ["x"], ["a"], name="c0"),
                Node("clamp", ["x"], ["b"], name="c1"),
                Node("reshape", ["a"], ["r"], {"shape": [4, 4]}, name="view"),
                Node("add", ["a", "b"], ["s"], name="add"),
                Node("clamp", ["r"], ["y"], name="c2"),
                Node("clamp", ["s"], ["z"], name="c3")],
               ["x"], ["y", "z"])
    plan = plan_memory(g)
    assert plan.inplace_nodes.get("add") == "b"
    check_plan(g)


def test_reshape_of_input_to_output_is_a_copy_and_duplicate_outputs() -> None:
    g = _graph([_q("x", (1, 12)), _q("r", (1, 3, 4)), _q("c", (1, 3, 4))],
               [Node("reshape", ["x"], ["r"], {"shape": [3, 4]}, name="view"),
                Node("clamp", ["r"], ["c"], name="relu")],
               ["x"], ["r", "c", "c"])
    plan = plan_memory(g)
    assert "view" not in plan.alias_nodes
    assert plan.output_copies == [("c", 2)]
    assert plan.arena_size == 0
    check_plan(g)


def test_slice_writes_over_the_start_of_its_dying_input() -> None:
    g = _graph([_q("x", (1, 4, 6)), _q("a", (1, 4, 6)), _q("s", (1, 2, 3)), _q("t", (1, 4, 6)),
                _q("u", (1, 4, 3)), _q("y", (1, 2, 3)), _q("z", (1, 4, 3))],
               [Node("clamp", ["x"], ["a"], name="c0"),
                Node("slice", ["a"], ["s"], {"begin": [0, 1, 0], "end": [1, 4, 6], "strides": [1, 2, 2]},
                     name="strided"),
                Node("clamp", ["s"], ["y"], name="c1"),
                Node("clamp", ["x"], ["t"], name="c2"),
                Node("slice", ["t"], ["u"], {"begin": [0, 0, 3], "end": [1, 4, 6], "strides": [1, 1, 1]},
                     name="split_second"),
                Node("slice", ["t"], ["v"], {"begin": [0, 0, 0], "end": [1, 4, 3], "strides": [1, 1, 1]},
                     name="split_first"),
                Node("mul", ["u", "v"], ["z"], name="mul")],
               ["x"], ["y", "z"])
    g.add_tensor(_q("v", (1, 4, 3)))
    plan = plan_memory(g)
    assert plan.inplace_nodes["strided"] == "a"
    assert plan.tensors["s"].offset == plan.tensors["a"].offset
    # t is still read by split_first after split_second: only the last slice of t may reuse it
    assert "split_second" not in plan.inplace_nodes and plan.inplace_nodes["split_first"] == "t"
    check_plan(g)


def test_greedy_beats_naive_on_a_chain() -> None:
    # ten layers of alternating sizes: the arena is two live tensors, not the sum of all
    ts = [_q("x", (1, 100))] + [_q(f"t{i}", (1, 100 if i % 2 else 60)) for i in range(10)]
    nodes = [Node("clamp", ["x" if i == 0 else f"t{i-1}"], [f"t{i}"], name=f"n{i}") for i in range(10)]
    for i in range(10):
        ts[i + 1].shape = (1, 100)
    g = _graph(ts, nodes, ["x"], ["t9"])
    plan = plan_memory(g)
    # every clamp can run in place: one buffer of 100 bytes
    assert plan.arena_size == plan.lower_bound == 100
    check_plan(g)


def test_random_graphs() -> None:
    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(2, 14))
        tensors = [_q("x", (1, int(rng.integers(1, 40)) * 4))]
        nodes = []
        for i in range(n):
            avail = [t.name for t in tensors]
            a = avail[int(rng.integers(len(avail)))]
            kind = rng.choice(["clamp", "add", "mul", "reshape", "slice", "other"])
            if kind in ("add", "mul"):
                same = [t for t in avail if tensors[[u.name for u in tensors].index(t)].shape
                        == tensors[[u.name for u in tensors].index(a)].shape]
                b = same[int(rng.integers(len(same)))]
                shape = tensors[[u.name for u in tensors].index(a)].shape
                nodes.append(Node(str(kind), [a, b], [f"t{i}"], name=f"n{i}"))
            elif kind == "slice":
                full = tensors[[u.name for u in tensors].index(a)].shape
                keep = max(1, full[-1] // 2)
                shape = (*full[:-1], keep)
                nodes.append(Node("slice", [a], [f"t{i}"], {"begin": [0] * len(full), "end": list(shape),
                                                             "strides": [1] * len(full)}, name=f"n{i}"))
            elif kind == "reshape":
                shape = tensors[[u.name for u in tensors].index(a)].shape
                shape = (1, shape[1] // 2, 2) if len(shape) == 2 else (1, shape[1] * shape[2])
                nodes.append(Node("reshape", [a], [f"t{i}"], {"shape": list(shape[1:])}, name=f"n{i}"))
            elif kind == "clamp":
                shape = tensors[[u.name for u in tensors].index(a)].shape
                nodes.append(Node("clamp", [a], [f"t{i}"], name=f"n{i}"))
            else:   # not in-place capable
                shape = (1, int(rng.integers(1, 40)) * 4)
                nodes.append(Node("linear", [a], [f"t{i}"], name=f"n{i}"))
            tensors.append(_q(f"t{i}", shape))
        outs = [f"t{n-1}"] + ([f"t{int(rng.integers(n))}"] if rng.random() < 0.5 else [])
        g = _graph(tensors, nodes, ["x"], outs)
        g.prune()
        check_plan(g)
