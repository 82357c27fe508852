"""C code generation: a quantized NHWC graph -> NAME.h, NAME.c, NAME_weights.c, the kernels
the model calls (sources and the headers they include), README.md.

The generated code calls one integer kernel per layer (``kernels/``, copied verbatim, only the
ones the model uses) with a ``static const`` parameter struct holding that layer's constants
(shapes, zero points, multipliers, shifts) exactly as the op's ``quantize()`` computed them.
Each op's lowering is an entry of ``lower.LOWERINGS``; the structs it fills are defined once,
in the kernel headers (``cheaders``).  Activations live in one static arena laid out by
``memory_plan``; graph inputs and outputs live in the caller's buffers.  Output bytes depend
only on the graph and the options.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...errors import UnsupportedOpError
from ...ir import Graph, Node
from ...memory_plan import MemoryPlan
from ...memory_plan import plan_memory as _plan_memory
from ...ops import get_op, with_bodies
from ..base import atomic_write_text
from . import render
from .cformat import c_identifier, comment, model_name
from .cheaders import kernel_api
from .layer import LayerCode, ModelCode
from .lower import LOWERINGS, allows_overlap, int16_ops, int32_input_ops, kernel_scratch, supported_ops
from .lower.movement import COPY
from .readme import readme

__all__ = ["CModel", "generate", "write", "model_name", "c_identifier", "model_plan"]


@dataclass
class CModel:
    """Everything generated for one model (texts, plus facts the target reports)."""
    name: str
    files: dict[str, str]
    plan: MemoryPlan
    kernel_files: list[str]
    weight_bytes: int
    input_size: int
    output_size: int
    header_files: list[str]


def check_activation_types(graph: Graph) -> None:
    """int8 activations; int16 ones inside the model (each op checks it has a 16x8 kernel);
    int32 as index outputs (``OpDef.output_dtype``) that are graph outputs, and as ids (token
    ids, masks) that only ops reading int32 activations consume."""
    producer = {o: node for node in graph.nodes for o in node.outputs}
    consumers: dict[str, list] = {}
    for node in graph.nodes:
        for x in node.inputs:
            consumers.setdefault(x, []).append(node)
    index_ops = [op for op in supported_ops() if get_op(op).output_dtype == "int32"]
    id_ops = int32_input_ops()
    for n in graph.activations():
        t = graph.t(n)
        node = producer.get(n)
        users = consumers.get(n, [])
        if t.dtype == "int8" or (t.dtype == "int16" and node is not None):
            continue
        if t.dtype == "int32" and node is not None and node.op in index_ops and not users:
            continue
        if t.dtype == "int32" and (node is None or node.op in id_ops) and users \
                and all(u.op in id_ops for u in users):
            continue
        where = f" (made by {node.op} at {node.where()})" if node is not None else ""
        bad = [u for u in users if u.op not in id_ops] or users
        raise UnsupportedOpError(f"the C target supports int8 activations, int16 activations inside the model "
                                 f"(16x8 layers), int32 {'/'.join(index_ops)} indices at the model's outputs "
                                 f"and int32 ids read by {'/'.join(id_ops)}; {n}{where} is {t.dtype}"
                                 + (f" and feeds {bad[0].op} at {bad[0].where()}" if bad else "")
                                 + " (see `edgeq targets --ops`)")
    _check_int16_kernels(graph)


def _check_int16_kernels(graph: Graph) -> None:
    """Every node with an int16 activation has a 16x8 kernel, in loop bodies too."""
    for g in with_bodies(graph):
        for node in g.nodes:
            entry = LOWERINGS.get(node.op)
            acts = [n for n in [*node.inputs, *node.outputs] if not g.t(n).is_constant]
            if (entry is None or not entry.int16) and any(g.t(n).dtype == "int16" for n in acts):
                raise UnsupportedOpError(f"the C target has no int16 kernel for op '{node.op}' at {node.where()} "
                                         f"(16x8 ops: {', '.join(int16_ops())})")


def lower_layer(model: ModelCode, index: int) -> LayerCode:
    node = model.graph.nodes[index]
    entry = LOWERINGS.get(node.op)
    if entry is None:
        raise UnsupportedOpError(f"the C target has no kernel for op '{node.op}' at {node.where()}; "
                                 f"`edgeq targets --ops` lists what each target runs")
    layer = LayerCode(model, index, node, entry.all_kernels)
    entry.build(layer)
    return layer


def output_copies(model: ModelCode) -> list[str]:
    """Copies of graph outputs that the plan stores elsewhere (an output that is also read
    later, or one tensor that is two outputs)."""
    lines = []
    for tensor, slot in model.plan.output_copies:
        model.used_regions.add("output")
        model.use(COPY)
        off = model.plan.output_offsets[slot]
        dst = "output" if off == 0 else f"output + {off}"
        lines += [f"    /* graph output {slot} is {comment(tensor)}, stored elsewhere: copy it */",
                  f"    {COPY.function}({model.ptr(tensor)}, {dst}, {model.nbytes(tensor)});", ""]
    return lines


def model_plan(graph: Graph, input_in_arena: bool = False,
               kernel_allows: Callable[[Node], bool] | None = None) -> MemoryPlan:
    """The C target's memory plan: the scratch buffers its kernels ask for, outputs over consumed
    inputs where the kernels allow it (``kernel_allows``, default: every kernel without a
    restrict pointer); ``input_in_arena``: the input API of ``NAME_input()`` / ``NAME_run()``."""
    allows = kernel_allows or (lambda node: allows_overlap(node, graph))
    return _plan_memory(graph, input_in_arena=input_in_arena, kernel_allows=allows, scratch=kernel_scratch)


def generate(graph: Graph, name: str, trace: bool = False, input_in_arena: bool = False,
             marks: bool = False) -> CModel:
    """Plan memory and generate every file text for ``graph`` (quantized, NHWC).

    ``trace``: a debug variant whose ``NAME_invoke`` calls ``edgeq_trace(layer, data, size)``
    after every layer (used to locate the first differing layer; never shipped).
    ``input_in_arena``: the input lives in the arena (``NAME_input()``, ``NAME_run()``; the
    classic ``NAME_invoke`` copies its input there).  ``marks``: the per-layer profile variant,
    calling the harness's ``edgeq_layer_mark(layer)`` after every layer (never shipped)."""
    if not graph.quantized or graph.layout != "nhwc":
        raise UnsupportedOpError("the C target needs a quantized NHWC graph (call prepare() first)")
    check_activation_types(graph)
    plan = model_plan(graph, input_in_arena)
    for n, t in plan.tensors.items():
        if n in graph.tensors and graph.t(n).dtype == "int16" and t.offset % 2:
            raise UnsupportedOpError(f"int16 tensor {n} would start at odd byte {t.offset} of the {t.region} "
                                     f"buffer; put the int16 outputs first")
    model = ModelCode(graph, name, plan, trace, marks)
    for i in range(len(graph.nodes)):
        model.layers.append(lower_layer(model, i))
    model.copy_lines = output_copies(model)
    if plan.input_in_arena:
        model.use(COPY)          # NAME_invoke copies its input into the arena

    api = kernel_api()
    kernel_files, included = model.kernel_files(), model.api_headers()
    # NAME.c's includes and everything they and the kernel sources include
    headers = sorted(set(included) | set(api.headers_needed([*kernel_files, *included])))
    files = {
        f"{name}.h": render.header(model),
        f"{name}.c": render.source(model),
        f"{name}_weights.c": render.weights(model),
    }
    for f in [*headers, *kernel_files]:
        files[f] = api.path(f).read_text()
    files["README.md"] = readme(model, headers)
    return CModel(name, files, plan, kernel_files, model.weight_bytes, plan.input_size, plan.output_size, headers)


def write(model: CModel, c_dir: Path) -> list[Path]:
    """Write every file atomically into ``c_dir``; returns their paths (sorted)."""
    paths = []
    for fname in sorted(model.files):
        path = Path(c_dir) / fname
        atomic_write_text(path, model.files[fname])
        os.chmod(path, 0o644)   # sources, not secrets (the atomic writer creates them 0600)
        paths.append(path)
    return paths
