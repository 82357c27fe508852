"""TFLite int8 target: a .tflite flatbuffer written from the quantized NHWC graph with the
flatbuffers runtime (no TensorFlow), validated bit for bit in TFLite Micro and LiteRT's
reference kernels, and measured (LSB differences) under LiteRT's default kernels."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import interpreter, passes
from ...ir import Graph
from ...quant import quantize
from ...files import atomic_write_bytes
from ..base import RuntimeRun, TargetProfile
from . import runtimes
from .lower import build_model, check_supported, supported_ops
from .registry import REFUSALS
from .schema import read_model
from .schema import serialize

input_rounding = "half_away"   # TFLite QUANTIZE: TfLiteRound(x / scale), half away from zero
MODEL_FILE = "model.tflite"


def prepare(qgraph: Graph, profile: TargetProfile, options: dict) -> Graph:
    """NHWC (the layout pass decides everything layout-related); TFLite needs nothing else."""
    g = passes.nhwc_graph(qgraph, input_layout=options.get("input_layout", "nhwc"))
    check_supported(g)
    return g


def emit(graph: Graph, out_dir: Path, profile: TargetProfile, options: dict) -> list[Path]:
    data = model_bytes(graph, options, profile)
    path = Path(out_dir) / MODEL_FILE
    atomic_write_bytes(path, data)
    return [path]


def linear_op(profile: TargetProfile | None, options: dict) -> str:
    """How linear layers are lowered: options["linear_op"], else the profile's [tflite] table."""
    raw = profile.raw.get("tflite", {}) if profile is not None else {}
    return str(options.get("linear_op") or raw.get("linear_op") or "conv_2d")


def model_bytes(graph: Graph, options: dict, profile: TargetProfile | None = None) -> bytes:
    model = build_model(graph, io=options.get("io", "int8"), description=options.get("description", ""),
                        version=str(options.get("edgeq_version", "")), linear_op=linear_op(profile, options))
    return serialize(model)


def _artifact(artifacts: list[Path]) -> bytes:
    return next(p for p in artifacts if Path(p).suffix == ".tflite").read_bytes()


def _activation_bytes(graph: Graph) -> int:
    return int(sum(graph.t(n).size * np.dtype(graph.t(n).dtype).itemsize for n in graph.activations()))


def model_inputs(graph: Graph, int_inputs: list[np.ndarray], float_inputs: list[np.ndarray] | None,
                 options: dict) -> list[np.ndarray]:
    """What the artifact's inputs take: our integers (int8, int16 for a 16x8 input), or
    (io=float) the user's floats in the graph input's layout. Integer inputs (token ids,
    masks) are int32 either way."""
    if options.get("io", "int8") != "float":
        return [np.ascontiguousarray(x, dtype=graph.t(n).dtype) for n, x in zip(graph.inputs, int_inputs)]
    if float_inputs is None:   # only integers at hand: dequantize them (QUANTIZE gets them back)
        return [interpreter.dequantize(graph, n, x) if graph.t(n).quant is not None else
                np.ascontiguousarray(x, dtype=graph.t(n).dtype) for n, x in zip(graph.inputs, int_inputs)]
    layout = options.get("input_layout", graph.input_layout)
    out = []
    for name, x in zip(graph.inputs, float_inputs):   # torch layout; 4-D inputs of an NHWC-input model are transposed
        if graph.t(name).quant is None:
            out.append(np.ascontiguousarray(x, dtype=graph.t(name).dtype))
            continue
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4 and graph.layout == "nhwc" and layout == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        out.append(np.ascontiguousarray(x))
    return out


def to_lsb(graph: Graph, outputs: list[np.ndarray], options: dict) -> list[np.ndarray]:
    """Artifact outputs as the reference's integers (io=float: requantize, round half to even)."""
    res = []
    for name, y in zip(graph.outputs, outputs):
        t = graph.t(name)
        if y.dtype.kind == "f":
            y = quantize(y.astype(np.float64), *t.quant.scalar(), t.dtype)
        res.append(y.astype(t.dtype).reshape((y.shape[0], *t.shape[1:])))
    return res


def run(graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
        float_inputs: list[np.ndarray], options: dict) -> list[RuntimeRun]:
    data = _artifact(artifacts)
    feed = model_inputs(graph, int_inputs, float_inputs, options)
    arena = runtimes.arena_size_for(data, _activation_bytes(graph))
    tflm_out, arena_used = runtimes.run_tflm(data, feed, arena)
    runs = [RuntimeRun(runtimes.tflm_label(), to_lsb(graph, tflm_out, options), must_be_exact=True,
                       extra={"arena_used_bytes": arena_used})]
    native_fc = linear_op(profile, options) == "fully_connected" and any(n.op == "linear" for n in graph.nodes)
    for reference in (True, False):
        out = runtimes.run_litert(data, feed, reference)
        extra = {"note": "FULLY_CONNECTED requantizes in float in LiteRT's reference kernels"} \
            if reference and native_fc else {}
        runs.append(RuntimeRun(runtimes.litert_label(reference), to_lsb(graph, out, options),
                               must_be_exact=reference and not native_fc, extra=extra))
    return runs


def intermediates(graph: Graph, data: bytes, sample: list[np.ndarray], runtime: str) -> dict[str, np.ndarray]:
    """Every IR tensor's value on one sample in ``runtime`` ("litert_ref" or "tflm")."""
    names = {t.name.decode() if isinstance(t.name, bytes) else t.name: i
             for i, t in enumerate(read_model(data).subgraphs[0].tensors)}
    wanted = {n: names[n] for n in graph.activations() if n in names}
    if runtime == "litert_ref":
        interp = runtimes.litert_interpreter(data, reference=True, preserve_all=True)
        for d, x in zip(interp.get_input_details(), sample):
            interp.set_tensor(d["index"], np.ascontiguousarray(x))
        interp.invoke()
        return {n: np.array(interp.get_tensor(i), copy=True) for n, i in wanted.items()}
    interp = runtimes.tflm_interpreter(data, runtimes.arena_size_for(data, _activation_bytes(graph)),
                                       preserve_all=True)
    for k, x in enumerate(sample):
        interp.set_input(np.ascontiguousarray(x), k)
    with runtimes.capture_c_output():
        interp.invoke()
    values = {}
    for n, i in wanted.items():
        t = interp.GetTensor(i, 0)   # {"dtype", "shape", "tensor_data"}
        values[n] = np.array(t["tensor_data"], copy=True).reshape(tuple(t["shape"]))
    return values


def first_mismatch(graph: Graph, artifacts: list[Path], profile: TargetProfile,
                   int_inputs: list[np.ndarray], reference_values: dict[str, np.ndarray],
                   options: dict) -> str:
    """Name the first IR node whose output differs from the integer reference, looking at
    LiteRT BUILTIN_REF's intermediates first, then TFLite Micro's."""
    data = _artifact(artifacts)
    sample = model_inputs(graph, [x[:1] for x in int_inputs], None, options)
    found = []
    for runtime, label in (("litert_ref", runtimes.litert_label(True)), ("tflm", runtimes.tflm_label())):
        try:
            values = intermediates(graph, data, sample, runtime)
        except Exception as e:  # noqa: BLE001 - report what we can
            found.append((len(graph.nodes) + 1, f"{label}: could not read intermediates ({e})"))
            continue
        for pos, node in enumerate(graph.nodes):
            msg = _compare_node(graph, node, values, reference_values)
            if msg:
                found.append((pos, f"{msg} in {label}"))
                break
    if not found:
        return "no IR node output differs on this sample (the difference is outside the IR tensors)"
    found.sort(key=lambda t: t[0])
    return "; ".join(m for _, m in found)


def _compare_node(graph: Graph, node, values: dict, reference: dict) -> str:  # noqa: ANN001
    for out in node.outputs:
        if out not in values or out not in reference:
            continue
        ref = np.asarray(reference[out])[:1].astype(np.int64)
        got = np.asarray(values[out]).astype(np.int64).reshape(ref.shape)
        if not np.array_equal(ref, got):
            d = np.abs(ref - got)
            return (f"node '{node.name}' (op {node.op}, module '{node.module_path or '<top level>'}'), "
                    f"output '{out}': {int((d > 0).sum())} of {d.size} values differ, max {int(d.max())} LSB")
    return ""


def memory(graph: Graph, artifacts: list[Path], profile: TargetProfile, options: dict) -> dict:
    data = _artifact(artifacts)
    interp = runtimes.tflm_interpreter(data, runtimes.arena_size_for(data, _activation_bytes(graph)))
    sample = model_inputs(graph, [np.zeros((1, *graph.t(n).shape[1:]), dtype=graph.t(n).dtype) for n in graph.inputs],
                          None, options)
    for k, x in enumerate(sample):
        interp.set_input(x, k)
    with runtimes.capture_c_output():
        interp.invoke()
    return {"tflm_arena_bytes": runtimes.tflm_arena_bytes(interp), "model_bytes": len(data),
            "tflm_arena_note": "TFLite Micro host (64-bit) build; a Cortex-M build needs a few % less"}


def refusals() -> dict[str, str]:
    return dict(REFUSALS)


__all__ = ["input_rounding", "prepare", "emit", "run", "first_mismatch", "memory", "supported_ops", "refusals"]
