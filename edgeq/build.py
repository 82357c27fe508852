"""``edgeq build``: model + calibration data + target profile -> artifacts + report.

Top to bottom: load and check the inputs, trace and quantize (``pipeline``), let the target
prepare and emit its artifacts, run every runtime on every validation sample, compare with the
integer reference, write the report (``report``)."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from . import interpreter, metrics, report
from .data import check_inputs, load_inputs, load_labels
from .errors import EdgeqError, ValidationError
from .frontend import load_model
from .ir import Graph
from .mixed_precision import PrecisionRequest
from .ops import get_op
from .options import BuildOptions
from .pipeline import Quantization, float_graph, quantize_model
from .targets import TargetProfile, load_profile, target_module
from .version import __version__

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


class _Clock:
    """Wall time per build stage (the report's "timings")."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        self.stages[f"{name}_s"] = self.stages.get(f"{name}_s", 0.0) + time.perf_counter() - t

    def summary(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.stages.items()},
                "total_s": round(time.perf_counter() - self.start, 3)}


def build(model: str | torch.nn.Module | torch.export.ExportedProgram,
          calibration: str | Path | np.ndarray | list[np.ndarray],
          target: str, out_dir: str | Path,
          eval_data: str | Path | np.ndarray | list[np.ndarray] | None = None,
          eval_labels: str | Path | np.ndarray | None = None,
          options: BuildOptions | None = None, **kwargs: Any) -> Report:
    """Build ``model`` for ``target`` into ``out_dir`` and return the report.

    Options come as a ``BuildOptions`` and/or as its field names in keyword arguments (method,
    percentile, precision, name, ...; see ``edgeq.options.BuildOptions``).

    Raises EdgeqError for user mistakes; ValidationError when an artifact that must be bit-exact
    with the integer reference is not (the report is written first)."""
    opts = BuildOptions.from_kwargs(options, **kwargs)
    opts.check()
    clock = _Clock()
    # refuse an incomplete precision request before any work (labels are checked again below)
    PrecisionRequest(opts.precision, [], opts.target_sqnr, opts.max_accuracy_drop, None,
                     None if eval_labels is None else np.zeros(0)).check()
    profile = load_profile(target)
    tmod = target_module(profile)
    out = _prepare_out_dir(out_dir)
    model_label = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        model = load_model(model)

    with clock.stage("trace"):
        cal = _as_arrays(calibration, None, "calibration")
        shapes = [tuple(opts.input_shape)] if opts.input_shape else [tuple(a.shape[1:]) for a in cal]
        fgraph = float_graph(model, shapes if isinstance(model, torch.nn.Module) else None)
        graph_shapes = [fgraph.t(n).shape[1:] for n in fgraph.inputs]
        src = str(calibration) if isinstance(calibration, (str, Path)) else "(array)"
        check_inputs(cal, graph_shapes, fgraph.inputs, src, "calibration")
    ev, labels = _eval_set(eval_data, eval_labels, cal, fgraph.inputs, graph_shapes, opts.max_eval_samples)
    request = PrecisionRequest(opts.precision, list(opts.int16_layers), opts.target_sqnr, opts.max_accuracy_drop,
                               ev, labels)
    request.check()

    target_options = _target_options(opts, profile, model_label, target)
    with clock.stage("calibrate_quantize"):
        bar = _progress(opts.progress, "calibrate", None)   # passes over the set depend on method and candidates
        result = quantize_model(fgraph, cal, method=opts.method, options=target_options, percentile=opts.percentile,
                                progress=bar.update if bar is not None else None, precision=request)
        if bar is not None:
            bar.close()

    with clock.stage("emit"):
        tgraph = tmod.prepare(result.graph, profile, target_options)
        artifacts = tmod.emit(tgraph, out, profile, target_options)

    with clock.stage("reference"):
        float_out = _torch_outputs(model, ev)
        int_inputs = [_target_input(tgraph, i, x, tmod.input_rounding, opts.input_layout) for i, x in enumerate(ev)]
        ref_out = _reference_outputs(tgraph, int_inputs, opts.progress)
    with clock.stage("validate"):
        runs = tmod.run(tgraph, artifacts, profile, int_inputs, ev, target_options)
    validation, failed = _compare_runs(runs, ref_out, labels)
    failures = [_mismatch_message(tmod, tgraph, artifacts, profile, int_inputs, ref_out, r, target_options)
                for r in failed]
    memory = tmod.memory(tgraph, artifacts, profile, target_options)

    with clock.stage("sensitivity"):
        sample = [x[:MAX_SQNR_SAMPLES] for x in ev]
        layers = report.layer_report(result.quantized_float_graph, result.graph, sample,
                                     None if labels is None else labels[:MAX_SQNR_SAMPLES])
        plots = report.plots_for(result.quantized_float_graph, result.graph, sample, layers, out,
                                 opts.histogram_tensor)
    data = _report_data(model_label, target, profile, opts, cal, result, tgraph, artifacts, out, validation,
                        float_out, ref_out, runs, labels, layers, plots, memory, failures)
    data["timings"] = clock.summary()
    report.write_report(data, out)
    rep = Report(data, out)
    if failures and opts.raise_on_mismatch:
        raise ValidationError("; ".join(failures))
    return rep


def _target_options(opts: BuildOptions, profile: TargetProfile, model_label: str, target: str) -> dict:
    """The options dict the quantizer and the target read (profile quantizer settings included)."""
    return {**profile.quantizer, "equalization": opts.equalization, "bias_correction": opts.bias_correction,
            "io": opts.io, "input_layout": opts.input_layout, "name": opts.name, "edgeq_version": __version__,
            "description": f"{model_label} quantized by edgeq for {target}"}


def _report_data(model_label: str, target: str, profile: TargetProfile, opts: BuildOptions, cal: list[np.ndarray],
                 result: Quantization, tgraph: Graph, artifacts: list[Path], out: Path, validation: list[dict],
                 float_out: list[np.ndarray], ref_out: list[np.ndarray], runs: list, labels: np.ndarray | None,
                 layers: list[dict], plots: list[str], memory: dict, failures: list[str]) -> dict[str, Any]:
    return {
        "edgeq_version": __version__,
        "model": model_label,
        "target": target,
        "target_format": profile.format,
        "artifacts": [report.artifact_entry(p, out) for p in artifacts],
        "inputs": [report.io_entry(tgraph, n, opts.input_layout) for n in tgraph.inputs],
        "outputs": [report.io_entry(tgraph, n, opts.input_layout) for n in tgraph.outputs],
        "calibration": {"method": opts.method, "samples": int(cal[0].shape[0]),
                        **({"percentile": opts.percentile} if opts.method == "percentile" else {})},
        "validation": validation,
        "accuracy": report.accuracy_section(float_out, ref_out, runs, labels),
        "output_sqnr_db": [metrics.sqnr_db(_target_layout(tgraph, f), interpreter.dequantize(tgraph, n, q))
                           for f, n, q in zip(float_out, tgraph.outputs, ref_out)],
        "quantization": layers,
        "quantization_passes": result.passes_summary(),
        "precision": result.precision,
        "plots": plots,
        "memory": memory,
        "macs": int(sum(get_op(n.op).macs(n, tgraph) for n in tgraph.nodes)),
        "failures": failures,
    }


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


def _mismatch_message(tmod: Any, graph: Graph, artifacts: list[Path], profile: Any, int_inputs: list[np.ndarray],
                      ref_out: list[np.ndarray], run: Any, options: dict) -> str:
    bad = next(i for i in range(ref_out[0].shape[0])
               if any(not np.array_equal(r[i], o[i]) for r, o in zip(ref_out, run.outputs)))
    sample = [x[bad:bad + 1] for x in int_inputs]
    ref_values = interpreter.run(graph, sample, keep=True)
    layer = tmod.first_mismatch(graph, artifacts, profile, sample, ref_values, options)
    where = f" first differing layer: {layer}" if layer else ""
    return f"{run.runtime} is not bit-exact with the integer reference (first at sample {bad});{where}"


