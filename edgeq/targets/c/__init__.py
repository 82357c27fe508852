"""C for microcontrollers: generated C99 + integer kernels + one static arena.

``prepare`` puts the quantized graph in NHWC; ``emit`` writes ``out_dir/c/`` (``NAME.h``,
``NAME.c``, ``NAME_weights.c``, the kernels the model uses, ``README.md``); ``run`` compiles
it and runs every sample, on the host (``host-c`` profile) or on a Cortex-M4 under QEMU (a
profile with an ``[emulator]`` table, e.g. ``cortex-m4``), bit-exact with the integer
reference; ``memory`` reports the arena plan and the footprint of the compiled objects,
checked against the profile's ``[budget]``.
"""
from __future__ import annotations

import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ... import passes
from ...errors import EdgeqError
from ...ir import Graph
from ...ops import get_op
from ..base import RuntimeRun, TargetProfile
from . import qemu, toolchain
from ...memory_plan import MemoryPlan
from .emit import generate, model_name, model_plan, write
from .lower import supported_ops as _lowered_ops

__all__ = ["input_rounding", "prepare", "emit", "run", "memory", "first_mismatch", "supported_ops", "refusals",
           "model_plan", "layer_profile",
           "MemoryPlan", "SUPPORTED_OPS", "model_name"]

#: The C API takes int8 inputs; float data is quantized like TFLite's QUANTIZE (half away).
input_rounding = "half_away"

#: Harness instructions inside the measured region that are not the model's (see qemu.py).
HARNESS_OVERHEAD_INSTRUCTIONS = 8
#: ... of which before the entry of NAME_invoke (bench_start's return, the arguments, the call).
HARNESS_ENTRY_INSTRUCTIONS = 4


#: The IR ops the C target lowers (its lowering table, ops internal to passes excluded).
SUPPORTED_OPS = tuple(_lowered_ops())


def supported_ops() -> list[str]:
    return list(SUPPORTED_OPS)


def refusals() -> dict[str, str]:
    return {}


def prepare(qgraph: Graph, profile: TargetProfile, options: dict) -> Graph:
    """The quantized graph in NHWC (weights OHWI / 1HWO), the form the C code computes in.

    ``options['input_layout'] == 'nchw'`` keeps 4-D inputs in torch layout (the layout pass
    then transposes them inside the graph)."""
    return passes.nhwc_graph(qgraph, input_layout=options.get("input_layout", "nhwc"))


def emit(graph: Graph, out_dir: Path, profile: TargetProfile, options: dict) -> list[Path]:
    """Write the C sources to ``out_dir/c/``; returns the written paths.  ``options['input_in_arena']``:
    the input lives in the arena (``NAME_input()`` / ``NAME_run()``) instead of the caller's buffer."""
    model = generate(graph, model_name(options), input_in_arena=bool(options.get("input_in_arena")))
    return write(model, Path(out_dir) / "c")


# --------------------------------------------------------------------------- helpers

def _sources(artifacts: list[Path]) -> tuple[Path, str, list[Path]]:
    """(c directory, model name, .c files) of emitted artifacts."""
    paths = [Path(p) for p in artifacts]
    weights = [p for p in paths if p.name.endswith("_weights.c")]
    if len(weights) != 1:
        raise EdgeqError("the C artifacts must contain exactly one NAME_weights.c")
    name = weights[0].name[: -len("_weights.c")]
    return weights[0].parent, name, sorted(p for p in paths if p.suffix == ".c")


def _is_cross(profile: TargetProfile) -> bool:
    return bool(profile.raw.get("emulator"))


def _flat_inputs(graph: Graph, int_inputs: list[np.ndarray]) -> np.ndarray:
    if len(int_inputs) != len(graph.inputs):
        raise EdgeqError(f"graph has {len(graph.inputs)} inputs, got {len(int_inputs)} arrays")
    n = int(int_inputs[0].shape[0])
    parts = []
    for name, x in zip(graph.inputs, int_inputs):
        t = graph.t(name)
        x = np.asarray(x)
        if x.shape[0] != n or x.size != n * t.size:
            raise EdgeqError(f"input '{name}': expected {n} samples of shape {t.shape[1:]}, got {x.shape}")
        # each sample as the bytes of its C buffer (int16: little-endian)
        parts.append(np.ascontiguousarray(x.reshape(n, -1).astype(np.dtype(t.dtype).newbyteorder("<")))
                     .view(np.int8).reshape(n, -1))
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def _nbytes(graph: Graph, name: str) -> int:
    """Bytes of one sample of a tensor in the C buffers (int32 indices: 4 per value)."""
    t = graph.t(name)
    return t.size * np.dtype(t.dtype).itemsize


def _output_bytes(graph: Graph) -> int:
    return sum(_nbytes(graph, n) for n in graph.outputs)


def _from_bytes(graph: Graph, name: str, raw: np.ndarray) -> np.ndarray:
    """(N, bytes) int8 rows of one tensor -> (N, *shape) of its dtype (int32 little-endian)."""
    t = graph.t(name)
    dtype = np.dtype(t.dtype).newbyteorder("<")
    data = np.ascontiguousarray(raw).view(np.int8)
    if dtype.itemsize > 1:
        data = data.view(dtype).astype(t.dtype)
    return data.reshape(raw.shape[0], *t.shape[1:]).copy()


def _split_outputs(graph: Graph, flat: np.ndarray) -> list[np.ndarray]:
    outs, off = [], 0
    for name in graph.outputs:
        size = _nbytes(graph, name)
        outs.append(_from_bytes(graph, name, flat[:, off:off + size]))
        off += size
    return outs


class _BuildDir:
    """options['build_dir'] if given (kept), else a temporary directory (removed)."""

    def __init__(self, options: dict, what: str) -> None:
        self.keep = options.get("build_dir")
        self.what = what
        self.tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> Path:
        if self.keep:
            path = Path(self.keep) / self.what
            path.mkdir(parents=True, exist_ok=True)
            return path
        self.tmp = tempfile.TemporaryDirectory(prefix=f"edgeq_c_{self.what}_")
        return Path(self.tmp.name)

    def __exit__(self, *exc: Any) -> None:
        if self.tmp is not None:
            self.tmp.cleanup()


# --------------------------------------------------------------------------- run

def run(graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
        float_inputs: list[np.ndarray] | None, options: dict) -> list[RuntimeRun]:
    """Compile and run the generated C on every sample; integer outputs per graph output.

    Host profile: host gcc.  Cross profile (``[emulator]``): arm-none-eabi-gcc + QEMU, with
    ``extra['instructions_per_inference']`` (mean over samples, guest instructions between
    the harness markers minus the harness's own 8)."""
    c_dir, name, sources = _sources(artifacts)
    x = _flat_inputs(graph, int_inputs)
    out_size = _output_bytes(graph)
    prof = toolchain.compiler_profile(profile.raw)
    if not _is_cross(profile):
        extra_cflags = list(options.get("extra_cflags", []))
        if options.get("sanitize"):
            extra_cflags += toolchain.SANITIZE_FLAGS
        with _BuildDir(options, f"{profile.name}-host") as bdir:
            exe = toolchain.build_host(c_dir, name, sources, bdir, prof, extra_cflags)
            y = toolchain.run_host(exe, x, out_size, bdir)
        flags = " ".join([*prof["cflags"], *extra_cflags])
        return [RuntimeRun(f"{toolchain.compiler_version(prof['cc'])} host ({flags})",
                           _split_outputs(graph, y), True, {"samples": int(x.shape[0])})]

    qprof = qemu.normalize_profile(profile.raw)
    missing = qemu.missing_tools(qprof)
    if missing:
        raise EdgeqError(f"target '{profile.name}' needs {', '.join(missing)} on PATH; install "
                         "gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm")
    with _BuildDir(options, f"{profile.name}-qemu") as bdir:
        elf = qemu.build_elf(sources, [c_dir], name, bdir, qprof,
                             bdir / "qemu_inputs.bin", bdir / "qemu_outputs.bin")
        timeout = float(options.get("qemu_timeout", 120.0 + 2.0 * x.shape[0]))
        y, counts = qemu.run_qemu(elf, x, out_size, qprof, timeout=timeout)
    per = [c - HARNESS_OVERHEAD_INSTRUCTIONS for c in counts]
    macs = model_macs(graph)
    mean = statistics.fmean(per)
    extra = {
        "samples": len(per),
        "instructions_per_inference": int(round(mean)),
        "instructions_min": min(per),
        "instructions_max": max(per),
        "macs": macs,
        "instructions_per_mac": (mean / macs) if macs else None,
        "note": "guest instructions counted by a QEMU TCG plugin (not cycles); harness overhead removed",
    }
    return [RuntimeRun(f"{toolchain.compiler_version(qprof['cc'])} -> QEMU {' '.join(qprof['emulator'][1:])}",
                       _split_outputs(graph, y), True, extra)]


def timeline(graph: Graph, plan: MemoryPlan) -> dict[str, Any]:
    """The memory timeline of the report: per step (before the first layer, each layer, after
    the last) the bytes of the live arena tensors (their sum: the plan without overlaps would
    need at least this) and the arena bytes they cover in this plan; the plan's peak; the bound
    without overlaps."""
    return {"steps": ["(input)", *[n.name for n in graph.nodes], "(output)"],
            "live_bytes": list(plan.live_bytes), "used_bytes": list(plan.used_bytes),
            "arena_bytes": plan.arena_size, "bound_without_overlap_bytes": plan.lower_bound,
            "bound_with_overlap_bytes": plan.overlap_bound}


#: Instructions the per-layer profile build adds per layer: ``movs r0, #layer``, ``bl
#: edgeq_layer_mark`` and the marker's ``bx lr`` (checked against the plain build's total).
MARK_OVERHEAD_INSTRUCTIONS = 3


def layer_profile(graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
                  options: dict, total: int | None = None) -> dict[str, Any] | None:
    """Guest instructions per layer under QEMU, measured with the instruction-counting plugin.

    Builds a variant of the model whose ``NAME_invoke`` calls the harness's
    ``edgeq_layer_mark(i)`` after layer ``i`` (the shipped sources are not touched), runs it on
    the first sample of ``int_inputs`` (one array per graph input) and takes differences of the
    counts at the marks.  ``total``: the plain build's instructions per inference (harness
    overhead removed); the difference from the layers' sum is the invoke's own work (the call,
    the return, output copies).  None for a profile without an emulator (host builds)."""
    if not _is_cross(profile):
        return None
    sample = _flat_inputs(graph, [x[:1] for x in int_inputs])
    _, name, _ = _sources(artifacts)
    qprof = qemu.normalize_profile(profile.raw)
    model = generate(graph, name, marks=True)
    with _BuildDir(options, f"{profile.name}-profile") as bdir:
        srcs = [p for p in write(model, bdir / "c") if p.suffix == ".c"]
        elf = qemu.build_elf(srcs, [bdir / "c"], name, bdir, qprof, bdir / "in.bin", bdir / "out.bin")
        _, counts, marks = qemu.run_qemu_marked(elf, sample[:1],
                                                _output_bytes(graph), qprof,
                                                timeout=float(options.get("qemu_timeout", 600.0)))
    points = marks[0]
    if len(points) != len(graph.nodes):
        raise EdgeqError(f"profile build of '{name}' reported {len(points)} layer marks for {len(graph.nodes)} layers")
    marked_total = counts[0] - HARNESS_OVERHEAD_INSTRUCTIONS - MARK_OVERHEAD_INSTRUCTIONS * len(points)
    rows = []
    before = 0
    for i, (node, at) in enumerate(zip(graph.nodes, points)):
        n = at - before - (MARK_OVERHEAD_INSTRUCTIONS if i else HARNESS_ENTRY_INSTRUCTIONS)
        before = at
        macs = int(get_op(node.op).macs(node, graph))
        rows.append({"layer": i, "name": node.name, "op": node.op, "module": node.module_path or "",
                     "kernel": _layer_kernel(model, i), "instructions": int(n), "macs": macs,
                     "instructions_per_mac": (n / macs) if macs else None})
    plain = marked_total if total is None else int(total)
    layers_sum = sum(r["instructions"] for r in rows)
    for r in rows:
        r["share"] = r["instructions"] / plain if plain else 0.0
    return {"rows": rows, "total_instructions": plain, "layers_instructions": layers_sum,
            "invoke_overhead_instructions": plain - layers_sum,
            "profile_build_total": marked_total,
            "note": "guest instructions per layer, counted by the QEMU TCG plugin between marks called after "
                    "every layer of a profile build (marker calls removed); not cycles"}


def _layer_kernel(model: Any, index: int) -> str:
    """The kernel functions layer ``index`` calls in the generated NAME.c."""
    text = model.files[f"{model.name}.c"].split(f"/* Layer {index}: ", 1)
    if len(text) < 2:
        return ""
    statements = text[1].split("/* Layer ", 1)[0].split("*/", 1)[-1]
    calls = dict.fromkeys(re.findall(r"\b(edgeq_[a-z0-9_]+)\s*\(", statements))
    return ", ".join(k for k in calls if k != "edgeq_layer_mark")


def model_macs(graph: Graph) -> int:
    return int(sum(get_op(n.op).macs(n, graph) for n in graph.nodes))


def first_mismatch(graph: Graph, artifacts: list[Path], profile: TargetProfile, sample: list[np.ndarray],
                   ref_values: dict[str, np.ndarray], options: dict) -> str:
    """The first layer whose output differs from the integer reference on one sample.

    Rebuilds the model on the host with a trace hook after every layer (the shipped sources are
    not touched); the arithmetic is the same C, so a difference seen only on the target shows up
    here as "no layer differs on the host"."""
    _, name, _ = _sources(artifacts)
    model = generate(graph, name, trace=True, input_in_arena=bool(options.get("input_in_arena")))
    prof = toolchain.compiler_profile({"compiler": {"cc": "gcc", "cflags": ["-O2", "-std=c99"]}})
    with tempfile.TemporaryDirectory(prefix="edgeq_c_trace_") as tmp:
        tdir = Path(tmp)
        srcs = [p for p in write(model, tdir / "c") if p.suffix == ".c"]
        runner = tdir / "trace_runner.c"
        runner.write_text(toolchain.TRACE_RUNNER.format(name=name, upper=name.upper()))
        exe = tdir / "trace"
        toolchain._run([prof["cc"], *prof["cflags"], f"-I{tdir / 'c'}", *map(str, srcs), str(runner),
                        "-o", str(exe)], "compiling the trace build")
        (tdir / "in.bin").write_bytes(_flat_inputs(graph, sample)[0].tobytes())
        subprocess.run([str(exe), str(tdir / "in.bin"), str(tdir / "trace.bin")], capture_output=True,
                       timeout=600)
        raw = (tdir / "trace.bin").read_bytes() if (tdir / "trace.bin").exists() else b""
    pos, traced = 0, 0
    while pos + 8 <= len(raw):
        layer, size = (int(v) for v in np.frombuffer(raw[pos:pos + 8], dtype=np.int32))
        node = graph.nodes[layer]
        out = node.outputs[0]
        got = _from_bytes(graph, out, np.frombuffer(raw[pos + 8:pos + 8 + size], dtype=np.int8)[None])
        got = got.reshape(-1).astype(np.int64)
        pos += 8 + size
        traced += 1
        ref = np.asarray(ref_values[out])[:1].reshape(-1).astype(np.int64)
        if ref.shape != got.shape:
            return f"node '{node.name}' (op {node.op}): traced {got.size} values, reference has {ref.size}"
        if not np.array_equal(ref, got):
            d = np.abs(ref - got)
            return (f"node '{node.name}' (op {node.op}, module '{node.module_path or '<top level>'}'), "
                    f"output '{out}': {int((d != 0).sum())} of {ref.size} values differ, max {int(d.max())} LSB")
    if traced < len(graph.nodes):
        node = graph.nodes[traced]
        return f"the host trace build stopped in node '{node.name}' (op {node.op}): invoke failed there"
    return "no layer differs in a host build of the same C (the difference is specific to the target build)"


# --------------------------------------------------------------------------- memory

def memory(graph: Graph, artifacts: list[Path], profile: TargetProfile, options: dict) -> dict:
    """Arena plan and the footprint of the model's own compiled objects (not the harness).

    ``flash_bytes`` = text + data of NAME.o, NAME_weights.o and the kernel objects (code,
    weights and constants); ``ram_bytes`` = data + bss (the arena: the generated code has no
    other writable data).  Input and output buffers belong to the caller (``input_bytes``,
    ``output_bytes``), unless the input lives in the arena (``input_in_arena``); the memory
    timeline per layer is in ``timeline``; ``options['compare_tflm']`` adds TFLite Micro's arena
    for our own .tflite of the model (``tflm_compare``).  Over the profile's [budget] -> EdgeqError naming both numbers."""
    c_dir, name, sources = _sources(artifacts)
    plan = model_plan(graph, bool(options.get("input_in_arena")))
    classic = plan if not plan.input_in_arena else model_plan(graph, False)
    prof = toolchain.compiler_profile(profile.raw)
    cross = _is_cross(profile)
    caller_input = 0 if plan.input_in_arena else plan.input_size
    result: dict[str, Any] = {
        "c_api": (f"input in the arena: {name}_input() returns the buffer the caller fills, {name}_run(output)"
                  if plan.input_in_arena else f"classic: {name}_invoke(input, output), the input in the caller's buffer"),
        "input_in_arena": plan.input_in_arena,
        "arena_bytes": plan.arena_size,
        "arena_lower_bound_bytes": plan.lower_bound,
        "arena_overlap_bound_bytes": plan.overlap_bound,
        "input_bytes": plan.input_size,
        "output_bytes": plan.output_size,
        "ram_model_bytes": plan.arena_size + caller_input + plan.output_size,
        "ram_model_bytes_classic_api": classic.arena_size + classic.input_size + classic.output_size,
        "overlapping_layers": len(plan.overlaps),
        "timeline": timeline(graph, plan),
        "plan": plan.to_dict()["tensors"],
        "in_place": plan.to_dict()["in_place"],
        "overlaps": plan.to_dict()["overlaps"],
        "aliased_reshapes": plan.to_dict()["aliased_reshapes"],
    }
    with _BuildDir(options, f"{profile.name}-objects") as bdir:
        objs = toolchain.compile_objects(sources, c_dir, bdir, prof)
        sizes = toolchain.object_sizes(objs, prof["size"])
        stack = toolchain.stack_usage(bdir)
    flash = sum(s["flash"] for s in sizes.values())
    ram = sum(s["ram"] for s in sizes.values())
    weights = sizes[f"{name}_weights.c"]["flash"]
    main_src = (c_dir / f"{name}.c").read_text()
    kernels = toolchain.called_kernels(main_src)
    stack_bytes = stack.get(f"{name}_invoke", 0) + max((stack.get(k, 0) for k in kernels), default=0)
    result.update({
        "flash_bytes": flash,
        "weights_bytes": weights,
        "code_bytes": flash - weights,
        "ram_bytes": ram,
        "ram_with_io_bytes": ram + caller_input + plan.output_size,
        "stack_bytes": stack_bytes,
        "objects": sizes,
        "toolchain": toolchain.compiler_version(prof["cc"]),
        "objects_for": "target" if cross else "host (sizes of host objects, not a microcontroller)",
    })
    if options.get("compare_tflm"):
        from .tflm_compare import tflm_arena
        result.update(tflm_arena(graph, options))
    budget = profile.budget or {}
    part = profile.raw.get("target", {}).get("part", profile.name)
    result["budget"] = dict(budget)
    if cross or budget:
        if "flash_bytes" in budget and flash > int(budget["flash_bytes"]):
            raise EdgeqError(f"model '{name}' needs {flash} bytes of flash (code + weights), over the "
                             f"{budget['flash_bytes']}-byte flash budget of target '{profile.name}' ({part})")
        if "ram_bytes" in budget and ram + caller_input + plan.output_size > int(budget["ram_bytes"]):
            total = ram + caller_input + plan.output_size
            raise EdgeqError(f"model '{name}' needs {total} bytes of RAM (arena {ram} + input "
                             f"{caller_input} + output {plan.output_size}), over the "
                             f"{budget['ram_bytes']}-byte RAM budget of target '{profile.name}' ({part})")
    return result
