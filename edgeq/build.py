"""``edgeq build``: model + calibration data + target profile -> artifacts + report.

Trace -> float passes -> calibrate -> quantize -> target prepare -> emit -> run every runtime
on every validation sample -> compare with the integer reference -> report."""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import interpreter, metrics
from .data import check_inputs, load_inputs, load_labels
from .errors import EdgeqError, ValidationError
from .frontend import load_model
from .ir import Graph
from .mixed_precision import PrecisionRequest
from .ops import get_op
from .passes.equalize import equalize_cross_layer
from .pipeline import float_graph, quantized_graph
from .report import write_report
from .sensitivity import layer_sensitivity
from .targets import load_profile, target_module

MAX_SQNR_SAMPLES = 64


@dataclass
class Report:
    data: dict[str, Any]
    out_dir: Path

    @property
    def ok(self) -> bool:
        return not self.data.get("failures")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def build(model: str | torch.nn.Module | torch.export.ExportedProgram,
          calibration: str | Path | np.ndarray | list[np.ndarray],
          target: str, out_dir: str | Path,
          eval_data: str | Path | np.ndarray | list[np.ndarray] | None = None,
          eval_labels: str | Path | np.ndarray | None = None, *,
          method: str = "mse", percentile: float = 99.99,
          input_shape: tuple[int, ...] | None = None, io: str = "int8", input_layout: str = "nhwc",
          name: str = "model", max_eval_samples: int | None = None, progress: bool = False,
          equalization: bool = True, bias_correction: bool = True, histogram_tensor: str | None = None,
          precision: str = "int8", int16_layers: list[str] | None = None, target_sqnr: float | None = None,
          max_accuracy_drop: float | None = None, raise_on_mismatch: bool = True) -> Report:
    """Build ``model`` for ``target`` into ``out_dir`` and return the report.

    precision: ``int8``, ``16x8`` (every layer that can run with int16 activations does) or
    ``auto`` (promote the most sensitive layers to 16x8 until ``target_sqnr`` dB or
    ``max_accuracy_drop`` percentage points is met); ``int16_layers`` names layers or modules
    to promote explicitly.

    Raises EdgeqError for user mistakes; ValidationError when an artifact that must be bit-exact
    with the integer reference is not (the report is written first)."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    # refuse an incomplete precision request before any work (labels are checked again below)
    PrecisionRequest(precision, [], target_sqnr, max_accuracy_drop, None,
                     None if eval_labels is None else np.zeros(0)).check()
    profile = load_profile(target)
    tmod = target_module(profile)
    out = _prepare_out_dir(out_dir)
    model_label = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        model = load_model(model)

    cal = _as_arrays(calibration, None, "calibration")
    shapes = [tuple(input_shape)] if input_shape else [tuple(a.shape[1:]) for a in cal]
    t = time.perf_counter()
    fgraph = float_graph(model, shapes if isinstance(model, torch.nn.Module) else None)
    names = fgraph.inputs
    graph_shapes = [fgraph.t(n).shape[1:] for n in names]
    src = str(calibration) if isinstance(calibration, (str, Path)) else "(array)"
    check_inputs(cal, graph_shapes, names, src, "calibration")
    timings["trace_s"] = time.perf_counter() - t

    ev, labels = _eval_set(eval_data, eval_labels, cal, names, graph_shapes, max_eval_samples)
    request = PrecisionRequest(precision, list(int16_layers or []), target_sqnr, max_accuracy_drop, ev, labels)
    request.check()

    t = time.perf_counter()
    options = {**profile.quantizer, "equalization": equalization, "bias_correction": bias_correction,
               "io": io, "input_layout": input_layout, "name": name, "edgeq_version": _version(),
               "description": f"{model_label} quantized by edgeq for {target}"}
    bar = _progress(progress, "calibrate", None)   # passes over the set depend on method and candidates
    qgraph = quantized_graph(fgraph, cal, method=method, options=options, percentile=percentile,
                             progress=bar.update if bar is not None else None, precision=request)
    if bar is not None:
        bar.close()
    timings["calibrate_quantize_s"] = time.perf_counter() - t

    t = time.perf_counter()
    tgraph = tmod.prepare(qgraph, profile, options)
    artifacts = tmod.emit(tgraph, out, profile, options)
    timings["emit_s"] = time.perf_counter() - t

    t = time.perf_counter()
    float_out = _torch_outputs(model, ev)
    int_inputs = [_target_input(tgraph, i, x, tmod.input_rounding, input_layout) for i, x in enumerate(ev)]
    ref_out = _reference_outputs(tgraph, int_inputs, progress)
    timings["reference_s"] = time.perf_counter() - t
    t = time.perf_counter()
    runs = tmod.run(tgraph, artifacts, profile, int_inputs, ev, options)
    timings["validate_s"] = time.perf_counter() - t

    validation, failures = _compare_runs(runs, ref_out, labels)
    failures = [_mismatch_message(tmod, tgraph, artifacts, profile, int_inputs, ref_out, r, options) for r in failures]

    memory = tmod.memory(tgraph, artifacts, profile, options)
    t = time.perf_counter()
    fgraph_used = equalize_cross_layer(fgraph) if qgraph.meta.get("equalized") else fgraph
    sample = [x[:MAX_SQNR_SAMPLES] for x in ev]
    layers = layer_report(fgraph_used, qgraph, sample, None if labels is None else labels[:MAX_SQNR_SAMPLES])
    plots = _plots(fgraph_used, qgraph, sample, layers, out, histogram_tensor)
    timings["sensitivity_s"] = time.perf_counter() - t
    data = {
        "edgeq_version": _version(),
        "model": model_label,
        "target": target,
        "target_format": profile.format,
        "artifacts": [_artifact_entry(p, out) for p in artifacts],
        "inputs": [_io_entry(tgraph, n, input_layout) for n in tgraph.inputs],
        "outputs": [_io_entry(tgraph, n, input_layout) for n in tgraph.outputs],
        "calibration": {"method": method, "samples": int(cal[0].shape[0]),
                        **({"percentile": percentile} if method == "percentile" else {})},
        "validation": validation,
        "accuracy": _accuracy_section(float_out, ref_out, runs, labels),
        "output_sqnr_db": [metrics.sqnr_db(_target_layout(tgraph, f), interpreter.dequantize(tgraph, n, q))
                           for f, n, q in zip(float_out, tgraph.outputs, ref_out)],
        "quantization": layers,
        "quantization_passes": qgraph.meta.get("passes", {}),
        "precision": qgraph.meta.get("precision", {"mode": "int8"}),
        "plots": plots,
        "memory": memory,
        "macs": int(sum(get_op(n.op).macs(n, tgraph) for n in tgraph.nodes)),
        "timings": {**{k: round(v, 3) for k, v in timings.items()},
                    "total_s": round(time.perf_counter() - t_start, 3)},
        "failures": failures,
    }
    write_report(data, out)
    report = Report(data, out)
    if failures and raise_on_mismatch:
        raise ValidationError("; ".join(failures))
    return report


def _eval_set(eval_data: Any, eval_labels: Any, cal: list[np.ndarray], names: list[str],
              shapes: list[tuple[int, ...]], max_samples: int | None) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Validation inputs (the calibration set when no eval set is given) and labels, checked."""
    ev = _as_arrays(eval_data, names, "eval") if eval_data is not None else cal
    if eval_data is not None:
        check_inputs(ev, shapes, names, str(eval_data) if isinstance(eval_data, (str, Path)) else "(array)", "eval")
    labels = None
    if eval_labels is not None:
        n = ev[0].shape[0]
        labels = np.asarray(eval_labels, dtype=np.int64) if isinstance(eval_labels, np.ndarray) \
            else load_labels(eval_labels, n)
        if labels.shape != (n,):
            raise EdgeqError(f"labels have shape {labels.shape} but there are {n} eval samples")
    if max_samples:
        ev = [x[:max_samples] for x in ev]
        labels = None if labels is None else labels[:max_samples]
    return [np.array(x, dtype=np.float32) for x in ev], labels   # writable copies (files may be memory-mapped)


def _compare_runs(runs: list, ref_out: list[np.ndarray], labels: np.ndarray | None) -> tuple[list[dict], list]:
    """One validation entry per runtime run, and the runs that had to be bit-exact and were not."""
    validation, failed = [], []
    for r in runs:
        entry = {"runtime": r.runtime, "must_be_exact": r.must_be_exact, **metrics.compare(ref_out, r.outputs),
                 **r.extra}
        if labels is not None:
            entry["accuracy"] = metrics.accuracy(r.outputs[0], labels)
        validation.append(entry)
        if r.must_be_exact and entry["exact_fraction"] < 1.0:
            failed.append(r)
    return validation, failed


def _version() -> str:
    from . import __version__
    return __version__


def _prepare_out_dir(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgeqError(f"cannot create output directory {out}: {e.strerror}; choose a writable -o path") from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise EdgeqError(f"output directory {out} is not writable; choose a writable -o path")
    return out


def _as_arrays(data: Any, names: list[str] | None, what: str) -> list[np.ndarray]:
    if isinstance(data, (str, Path)):
        return load_inputs(data, names, what)
    if isinstance(data, np.ndarray):
        return [data]
    return list(data)


def _progress(enabled: bool, desc: str, total: int | None):  # noqa: ANN202 - tqdm or None
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="sample", leave=False, mininterval=1.0, delay=1.0)


def _torch_outputs(model: torch.nn.Module | torch.export.ExportedProgram, ev: list[np.ndarray]) -> list[np.ndarray]:
    """Float outputs of the original model (torch itself, not our float IR)."""
    module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
    chunks: list[list[np.ndarray]] = []
    n = ev[0].shape[0]
    with torch.no_grad():
        for s in range(0, n, 256):
            # the exported program is specialised to batch 1 on some models: feed one at a time there
            xs = [torch.from_numpy(x[s:s + 256]) for x in ev]
            try:
                y = module(*xs)
            except Exception:
                ys = [module(*[x[i:i + 1] for x in xs]) for i in range(xs[0].shape[0])]
                y = _concat_outputs(ys)
            outs = list(y) if isinstance(y, (tuple, list)) else [y]
            chunks.append([o.detach().numpy() if not o.is_floating_point() else   # argmax: keep indices
                           o.detach().numpy().astype(np.float32) for o in outs])
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def _concat_outputs(ys: list[Any]) -> Any:
    if isinstance(ys[0], (tuple, list)):
        return tuple(torch.cat([y[i] for y in ys]) for i in range(len(ys[0])))
    return torch.cat(ys)


def _target_input(graph: Graph, index: int, x: np.ndarray, rounding: str, input_layout: str) -> np.ndarray:
    """Float data (torch layout) -> the integers the target graph's input expects, in its layout."""
    q = interpreter.quantize_input(graph, index, x, rounding)
    if graph.layout == "nhwc" and q.ndim == 4 and input_layout == "nhwc":
        q = np.ascontiguousarray(q.transpose(0, 2, 3, 1))
    return q


def _target_layout(graph: Graph, y: np.ndarray) -> np.ndarray:
    """A torch (NCHW) 4-D output in the target graph's layout, for comparison with its outputs."""
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if graph.layout == "nhwc" and y.ndim == 4 else y


def _reference_outputs(graph: Graph, inputs: list[np.ndarray], progress: bool) -> list[np.ndarray]:
    bar = _progress(progress, "reference", inputs[0].shape[0])
    chunks = list(interpreter.run_batched(graph, inputs, 64, bar.update if bar is not None else None))
    if bar is not None:
        bar.close()
    return [np.concatenate([c[name] for c in chunks]) for name in graph.outputs]


def _accuracy_section(float_out: list[np.ndarray], ref_out: list[np.ndarray], runs: list, labels: np.ndarray | None) -> dict:
    if labels is None:
        return {}
    acc = {"float": metrics.accuracy(float_out[0], labels), "int8_reference": metrics.accuracy(ref_out[0], labels)}
    for r in runs:
        acc[r.runtime] = metrics.accuracy(r.outputs[0], labels)
    return acc


def _mismatch_message(tmod: Any, graph: Graph, artifacts: list[Path], profile: Any, int_inputs: list[np.ndarray],
                      ref_out: list[np.ndarray], run: Any, options: dict) -> str:
    bad = next(i for i in range(ref_out[0].shape[0])
               if any(not np.array_equal(r[i], o[i]) for r, o in zip(ref_out, run.outputs)))
    sample = [x[bad:bad + 1] for x in int_inputs]
    ref_values = interpreter.run(graph, sample, keep=True)
    layer = tmod.first_mismatch(graph, artifacts, profile, sample, ref_values, options)
    where = f" first differing layer: {layer}" if layer else ""
    return f"{run.runtime} is not bit-exact with the integer reference (first at sample {bad});{where}"


def _artifact_entry(path: Path, out: Path) -> dict:
    data = path.read_bytes()
    return {"path": str(path.relative_to(out)), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _io_entry(graph: Graph, name: str, input_layout: str) -> dict:
    t = graph.t(name)
    scale, zp = t.quant.scalar() if t.quant is not None else (None, None)   # argmax: int32 indices
    layout = None
    if len(t.shape) == 4:
        layout = "NHWC" if graph.layout == "nhwc" and not (name in graph.inputs and input_layout == "nchw") else "NCHW"
    return {"name": name, "shape": list(t.shape), "layout": layout, "dtype": t.dtype,
            "scale": scale, "zero_point": zp}


def layer_report(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray], labels: np.ndarray | None = None) -> list[dict]:
    """Per layer: output scale / zero point, weight scale range, SQNR of the int8 reference vs
    float at the layer's output (accumulated), and the sensitivity figures of edgeq.sensitivity."""
    fvals = interpreter.run(fgraph, inputs, keep=True)
    qin = [interpreter.quantize_input(qgraph, i, x) for i, x in enumerate(inputs)]
    qvals = interpreter.run(qgraph, qin, keep=True)
    sens = layer_sensitivity(fgraph, qgraph, inputs, labels)
    source = qgraph.meta.get("range_of", {})    # requantized copies (mixed precision) -> float tensor
    rows = []
    for node in qgraph.nodes:
        out = node.outputs[0]
        q = qgraph.t(out).quant
        scale, zp = q.scalar() if q is not None else (None, None)   # argmax: int32 indices
        row: dict[str, Any] = {"layer": node.name, "op": node.op, "module": node.module_path, "tensor": out,
                               "dtype": qgraph.t(out).dtype,
                               "output_scale": scale, "output_zero_point": zp,
                               "sqnr_db": metrics.sqnr_db(fvals[source.get(out, out)],
                                                          interpreter.dequantize(qgraph, out, qvals[out])),
                               **sens.get(node.name, {})}
        if len(node.inputs) > 1 and qgraph.t(node.inputs[1]).quant is not None and qgraph.t(node.inputs[1]).is_constant:
            ws = qgraph.t(node.inputs[1]).quant.scale
            row["weight_scale_min"], row["weight_scale_max"] = float(ws.min()), float(ws.max())
        rows.append(row)
    return rows


def _plots(fgraph: Graph, qgraph: Graph, sample: list[np.ndarray], layers: list[dict], out: Path,
           tensor: str | None) -> list[str]:
    from . import plots
    paths = [plots.sqnr_bar_chart(layers, out / "plots" / "sqnr.png")]
    if tensor is None:   # default: the output of the layer that hurts most on its own
        worst = min((r for r in layers if r["output_scale"] is not None),
                    key=lambda r: r.get("layer_alone_sqnr_db", np.inf))
        tensor = worst["tensor"]
    if tensor not in qgraph.tensors or qgraph.t(tensor).quant is None or qgraph.t(tensor).is_constant:
        raise EdgeqError(f"--histogram-tensor '{tensor}' is not an activation of the model; "
                         f"choose one of: {', '.join(r['tensor'] for r in layers)}")
    values = interpreter.run(fgraph, sample, keep=True)[tensor]
    scale, zp = qgraph.t(tensor).quant.scalar()
    info = np.iinfo(qgraph.t(tensor).dtype)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tensor)
    paths.append(plots.tensor_histogram(values, (info.min - zp) * scale, (info.max - zp) * scale, tensor,
                                        out / "plots" / f"histogram_{safe}.png", qgraph.t(tensor).dtype))
    return [str(p.relative_to(out)) for p in paths]
