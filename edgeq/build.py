"""``edgeq build``: model + calibration data + target profile -> artifacts + report.

Top to bottom: load and check the inputs, trace and quantize (``pipeline``), let the target
prepare and emit its artifacts, run every runtime on every validation sample, compare with the
integer reference, write the report (``report``)."""
from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from . import interpreter, latency, metrics, output, report
from .data import Inputs, Samples, check_inputs, check_labels, load_labels, read_samples
from .errors import EdgeqError, EdgeqNote, ValidationError
from .plots import layer_profile_chart
from .frontend import load_model
from .frontend.loader import input_signature, model_label
from .ir import Graph
from .mixed_precision import PrecisionRequest
from .ops import get_op
from .options import BuildOptions
from .parallel import in_parallel
from .pipeline import Prequantized, Quantization, float_graph, quantize_model
from .targets import TargetProfile, load_profile, target_module
from .version import __version__

MAX_SQNR_SAMPLES = 64
#: samples per torch call for the float outputs: their activations are freed between calls
TORCH_ROWS = 32
#: options that decide the quantization (a QAT module brings its own: they are ignored for it)
QUANTIZATION_OPTIONS = frozenset({"method", "percentile", "precision", "int16_layers", "target_sqnr",
                                  "max_accuracy_drop", "equalization", "bias_correction",
                                  "max_calibration_samples", "rounding", "rounding_budget"})


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
        release_freed_memory()

    def summary(self) -> dict[str, float]:
        return {**{k: round(v, 3) for k, v in self.stages.items()},
                "total_s": round(time.perf_counter() - self.start, 3)}


def _libc() -> Any:
    """The process's own C library symbols, where they include glibc's ``malloc_trim``."""
    try:
        lib = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - no dynamic symbols (not Linux/macOS)
        return None
    return lib if hasattr(lib, "malloc_trim") else None


_LIBC = _libc()


def release_freed_memory() -> None:
    """Hand the heap pages freed by a stage back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere). glibc keeps them otherwise, and the next stage's arrays, of other sizes,
    add to the peak instead of reusing them."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def build(model: str | torch.nn.Module | torch.export.ExportedProgram, calibration: Any,
          target: str, out_dir: str | Path, eval_data: Any = None, eval_labels: Any = None,
          options: BuildOptions | None = None, **kwargs: Any) -> Report:
    """Build ``model`` for ``target`` into ``out_dir`` and return the report.

    ``calibration`` / ``eval_data``: a .npy/.npz path, ``file.py:callable``, an array or tensor,
    a DataLoader, a Dataset or an iterable of batches (``edgeq.data``); labels come from
    ``eval_labels`` (a .npy path or an array) or from the batches. Options come as a
    ``BuildOptions`` and/or as its field names in keyword arguments (method, percentile,
    precision, name, trust_model, force, targets_dir, ...).

    The build happens beside ``out_dir`` and replaces it only when it is complete. Raises
    EdgeqError for user mistakes; ValidationError when an artifact that must be bit-exact with
    the integer reference is not (the build and its report are in place first)."""
    opts = BuildOptions.from_kwargs(options, **kwargs)
    profile = load_profile(target, opts.targets_dir)
    opts.check(profile.format)
    for note in opts.notes(profile.format, set(kwargs) | (options.given() if options is not None else set())):
        warnings.warn(note, EdgeqNote, stacklevel=2)
    # refuse an incomplete precision request before any work (labels are checked again below)
    PrecisionRequest(opts.precision, [], opts.target_sqnr, opts.max_accuracy_drop, None,
                     None if eval_labels is None else np.zeros(0)).check()
    dest = output.check_destination(out_dir, opts.force)
    pre = prequantized(model)
    given = set(kwargs) | (options.given() if options is not None else set())
    if pre is not None and given & QUANTIZATION_OPTIONS:
        warnings.warn(f"--{', --'.join(sorted(o.replace('_', '-') for o in given & QUANTIZATION_OPTIONS))}: "
                      "ignored, a QAT module carries its quantization (give them to edgeq.qat.prepare)",
                      EdgeqNote, stacklevel=2)
    label = pre.label if pre is not None else model_label(model)
    if isinstance(model, str):
        model = load_model(model, opts.trust_model)
    with private_tmp() as tmp, one_thread():
        return _build(model, label, calibration, profile, dest, eval_data, eval_labels, opts, tmp, pre)


def prequantized(model: Any) -> Prequantized | None:
    """A model that brings its own quantization (``edgeq.qat.prepare``'s module), or None."""
    hook = getattr(model, "edgeq_prequantized", None)
    return hook() if isinstance(model, torch.nn.Module) and callable(hook) else None


def _build(model: torch.nn.Module | torch.export.ExportedProgram, label: str, calibration: Any,
           profile: TargetProfile, dest: Path, eval_data: Any, eval_labels: Any, opts: BuildOptions,
           tmp: Path, pre: Prequantized | None = None) -> Report:
    clock = _Clock()
    tmod = target_module(profile)
    with clock.stage("trace"):
        fgraph, cal = trace_with_data(model, calibration, opts, tmp, pre.float_graph if pre else None)
    ev, labels = eval_set(eval_data, eval_labels, cal, fgraph, opts, tmp)
    request = PrecisionRequest(opts.precision, list(opts.int16_layers), opts.target_sqnr, opts.max_accuracy_drop,
                               ev, labels)
    request.check()
    target_opts = target_options(opts, profile, label)
    if pre is not None:
        _check_prequantized(pre, target_opts, profile)
        result = pre.quantization
        model = pre.float_model
    else:
        result = _quantize(fgraph, cal, opts, target_opts, request, clock, target_accepts(tmod, profile, target_opts, tmp))
    _check_histogram_tensor(result.graph, opts.histogram_tensor)
    staging = output.Staging(dest)
    try:
        with staging as stage:
            data = _emit_and_validate(model, label, profile, tmod, opts, cal, ev, labels, result, target_opts,
                                      stage, clock, pre)
            staging.commit()
    except OSError as e:
        raise output.write_error(e, dest) from None
    rep = Report(data, dest)
    if data["failures"] and opts.raise_on_mismatch:
        raise ValidationError("; ".join(data["failures"]))
    return rep


def _quantize(fgraph: Graph, cal: Samples, opts: BuildOptions, target_opts: dict, request: PrecisionRequest,
              clock: _Clock, accepts: Callable[[Graph], str | None] | None = None) -> Quantization:
    with clock.stage("calibrate_quantize"):
        bar = _progress(opts.progress, "calibrate", None)   # passes over the set depend on method and candidates
        result = quantize_model(fgraph, cal.arrays, method=opts.method, options=target_opts,
                                percentile=opts.percentile, progress=bar.update if bar is not None else None,
                                precision=request, accepts=accepts)
        if bar is not None:
            bar.close()
    return result


def target_accepts(tmod: Any, profile: TargetProfile, target_opts: dict, tmp: Path) -> Callable[[Graph], str | None]:
    """For ``--precision auto``: why the target cannot run a quantized graph (its lowering
    refuses a 16x8 layer, or the artifact is over the profile's budget), or None."""
    def accepts(qgraph: Graph) -> str | None:
        trial = Path(tempfile.mkdtemp(prefix="precision-", dir=tmp))
        try:
            tgraph = tmod.prepare(qgraph, profile, target_opts)
            tmod.memory(tgraph, tmod.emit(tgraph, trial, profile, target_opts), profile, target_opts)
        except EdgeqError as e:
            return str(e)
        finally:
            shutil.rmtree(trial, ignore_errors=True)
        return None
    return accepts


def _check_prequantized(pre: Prequantized, target_opts: dict, profile: TargetProfile) -> None:
    """A QAT module quantized with other quantizer settings than this target's cannot be built for it."""
    keys = sorted(k for k in set(target_opts) | set(pre.options) if k in profile.quantizer)
    differ = [k for k in keys if target_opts.get(k) != pre.options.get(k)]
    if differ:
        raise EdgeqError(f"the QAT module was prepared with quantizer settings "
                         f"{', '.join(f'{k}={pre.options.get(k)!r}' for k in differ)}; target {profile.name} asks "
                         f"for {', '.join(f'{k}={target_opts.get(k)!r}' for k in differ)}: prepare it for this target")


def _emit_and_validate(model: Any, label: str, profile: TargetProfile, tmod: Any, opts: BuildOptions,
                       cal: Samples, ev: list[np.ndarray], labels: np.ndarray | None, result: Quantization,
                       target_options: dict, out: Path, clock: _Clock,
                       pre: Prequantized | None = None) -> dict[str, Any]:
    """Everything that writes: artifacts, runtime validation, plots, latency, the report."""
    with clock.stage("emit"):
        tgraph = tmod.prepare(result.graph, profile, target_options)
        artifacts = tmod.emit(tgraph, out, profile, target_options)
    int_inputs = [_target_input(tgraph, i, x, tmod.input_rounding, opts.input_layout) for i, x in enumerate(ev)]
    sample = [x[:MAX_SQNR_SAMPLES] for x in ev]

    def validate() -> list:
        with clock.stage("validate"):
            return tmod.run(tgraph, artifacts, profile, int_inputs, ev, target_options)

    def references() -> tuple[list[np.ndarray], list[np.ndarray]]:
        with clock.stage("reference"):
            return _torch_outputs(model, ev), _reference_outputs(tgraph, int_inputs, opts.progress)

    def per_layer() -> list[dict]:
        with clock.stage("sensitivity"):
            return report.layer_report(result.quantized_float_graph, result.graph, sample,
                                       None if labels is None else labels[:MAX_SQNR_SAMPLES], opts.sensitivity)
    # independent, so side by side; the runtimes first, on this thread (gcc and QEMU are its
    # child processes, stopped with it on Ctrl-C); the per-layer report, the longest of the
    # others on the host targets, starts at once on the second core
    runs, layers, (float_out, ref_out) = in_parallel([validate, per_layer, references])
    validation, failed = _compare_runs(runs, ref_out, labels)
    failures = [_mismatch_message(tmod, tgraph, artifacts, profile, int_inputs, ref_out, r, target_options)
                for r in failed]
    qat = None
    if pre is not None:
        with clock.stage("qat_check"):
            qat, failure = _check_qat_outputs(pre, result.graph, tgraph, tmod.input_rounding, ev, ref_out, labels)
        failures += [failure] if failure else []
    memory = tmod.memory(tgraph, artifacts, profile, target_options)
    with clock.stage("plots"):
        plots = report.plots_for(result.quantized_float_graph, result.graph, sample, layers, out,
                                 opts.histogram_tensor)
        plots += report.memory_plots(memory, out)
    with clock.stage("latency"):
        speed = latency.measure(model, profile.format, artifacts, ev, lambda: _artifact_inputs(
            tgraph, [x[:1] for x in int_inputs], [x[:1] for x in ev], target_options, profile.format))
    data = _report_data(label, profile, opts, cal, result, tgraph, artifacts, out, validation, float_out, ref_out,
                        runs, labels, layers, plots, memory, failures)
    if qat is not None:
        data["qat"] = qat
    data["latency"] = speed
    profiler = getattr(tmod, "layer_profile", None)
    if profiler is not None and runs and runs[0].extra.get("instructions_per_inference"):
        with clock.stage("layer profile"):
            prof = profiler(tgraph, artifacts, profile, int_inputs, target_options,
                            runs[0].extra["instructions_per_inference"])
        if prof is not None:
            data["layer_profile"] = prof
            chart = layer_profile_chart(prof["rows"], out / "plots" / "layer_profile.svg")
            data["plots"] = [*data.get("plots", []), str(chart.relative_to(out))]
    data["size"] = latency.sizes(latency.float_weight_bytes(model), sum(a["bytes"] for a in data["artifacts"]),
                                 memory)
    data["timings"] = clock.summary()
    report.write_report(data, out)
    return data


def _check_qat_outputs(pre: Prequantized, qgraph: Graph, tgraph: Graph, rounding: str, ev: list[np.ndarray],
                       ref_out: list[np.ndarray], labels: np.ndarray | None) -> tuple[dict, str | None]:
    """The QAT module's own outputs on the eval data against the integer reference (the
    report's "qat" section); a failure line when they differ."""
    ints = [np.concatenate([interpreter.quantize_input(qgraph, i, x[s:s + 4096], rounding)
                            for s in range(0, x.shape[0], 4096)]) for i, x in enumerate(ev)]
    outs = [_target_layout(tgraph, y) for y in pre.integer_outputs(ints)]
    entry = {"runtime": "edgeq.qat module (torch)", **metrics.compare(ref_out, outs)}
    if labels is not None:
        entry["accuracy"] = metrics.accuracy(outs[0], labels)
    if entry["exact_fraction"] < 1.0:
        share = 1 - entry["exact_fraction"]
        return entry, f"the QAT module's outputs differ from the integer reference on {share:.1%} of the eval samples"
    return entry, None


def _artifact_inputs(tgraph: Graph, int_inputs: list[np.ndarray], ev: list[np.ndarray], options: dict,
                     fmt: str) -> list[np.ndarray]:
    if fmt != "tflite":
        return int_inputs
    from .targets.tflite import model_inputs
    return model_inputs(tgraph, int_inputs, ev, options)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch and numpy's BLAS run on one thread during a build (restored after). The work here
    is many small ops on small batches, where a second thread buys little and on a busy machine
    costs ten times over (threads waiting for a core: a 8x1152 by 1152x128 matmul took 2.1 ms
    on two threads of a loaded 2-core machine, 0.48 ms on one); and a float result then never
    depends on how many cores the machine has, so neither do the ranges calibration picks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def private_tmp() -> Iterator[Path]:
    """A temporary folder for the build's spilled data and for every temporary file of the tools
    it runs (TMPDIR is pointed at it), removed at the end, also on Ctrl-C."""
    tmp = Path(tempfile.mkdtemp(prefix="edgeq-build-"))
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    try:
        yield tmp
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(tmp, ignore_errors=True)


def trace_with_data(model: Any, calibration: Any, opts: BuildOptions, tmp: Path,
                    fgraph: Graph | None = None) -> tuple[Graph, Samples]:
    """Read the calibration data (as far as the model's signature tells how), trace (unless the
    float graph is given), check."""
    if fgraph is not None:
        known = Inputs(list(fgraph.inputs), len(fgraph.inputs), [len(fgraph.t(n).shape) for n in fgraph.inputs])
    else:
        sig = input_signature(model)
        known = Inputs(sig.names, sig.count, [len(s) for s in sig.shapes] if sig.shapes else
                       ([len(opts.input_shape) + 1] if opts.input_shape and sig.count == 1 else None))
    cal = read_samples(calibration, "calibration", known, tmp / "data", opts.max_calibration_samples)
    if fgraph is not None:
        pass
    elif isinstance(model, torch.nn.Module):
        shapes = [tuple(opts.input_shape)] if opts.input_shape else [tuple(a.shape[1:]) for a in cal.arrays]
        fgraph = float_graph(model, shapes, [a.dtype.kind in "iu" for a in cal.arrays])
    else:
        fgraph = float_graph(model, None)
    check_inputs(cal, _graph_shapes(fgraph), fgraph.inputs, _graph_dtypes(fgraph), "calibration")
    return fgraph, cal


def _graph_shapes(g: Graph) -> list[tuple[int, ...]]:
    return [tuple(g.t(n).shape[1:]) for n in g.inputs]


def _graph_dtypes(g: Graph) -> list[str]:
    return [str(g.t(n).dtype or "float32") for n in g.inputs]


def _check_histogram_tensor(qgraph: Graph, tensor: str | None) -> None:
    """--histogram-tensor must name an activation; checked before anything is written."""
    if tensor is None:
        return
    t = qgraph.tensors.get(tensor)
    if t is None or t.quant is None or t.is_constant:
        names = [n.outputs[0] for n in qgraph.nodes if qgraph.t(n.outputs[0]).quant is not None]
        raise EdgeqError(f"--histogram-tensor '{tensor}' is not an activation of the model; choose one of: "
                         f"{', '.join(names[:40])}{', ...' if len(names) > 40 else ''}")


def target_options(opts: BuildOptions, profile: TargetProfile, label: str) -> dict:
    """The options dict the quantizer and the target read (profile quantizer settings included).
    The description written into artifacts names the model by ``label``, never by a path."""
    return {**profile.quantizer, "equalization": opts.equalization, "bias_correction": opts.bias_correction,
            "rounding": opts.rounding, "rounding_budget": opts.rounding_budget,
            "io": opts.io, "input_layout": opts.input_layout, "name": opts.name, "edgeq_version": __version__,
            "input_in_arena": opts.input_in_arena, "compare_tflm": True,
            "description": f"{label} quantized by edgeq for {profile.name}"}


def _report_data(model_label: str, profile: TargetProfile, opts: BuildOptions, cal: Samples,
                 result: Quantization, tgraph: Graph, artifacts: list[Path], out: Path, validation: list[dict],
                 float_out: list[np.ndarray], ref_out: list[np.ndarray], runs: list, labels: np.ndarray | None,
                 layers: list[dict], plots: list[str], memory: dict, failures: list[str]) -> dict[str, Any]:
    return {
        "edgeq_version": __version__,
        "model": model_label,
        "target": profile.name,
        "target_format": profile.format,
        "target_profile": profile.source,
        "artifacts": [report.artifact_entry(p, out) for p in artifacts],
        "inputs": [report.io_entry(tgraph, n, opts.input_layout) for n in tgraph.inputs],
        "outputs": [report.io_entry(tgraph, n, opts.input_layout) for n in tgraph.outputs],
        "calibration": {"method": opts.method, "samples": cal.count,
                        **({"percentile": opts.percentile} if opts.method == "percentile" else {})},
        "validation": validation,
        "accuracy": report.accuracy_section(float_out, ref_out, runs, labels),
        "output_sqnr_db": [metrics.sqnr_db(_target_layout(tgraph, f), interpreter.dequantize(tgraph, n, q))
                           for f, n, q in zip(float_out, tgraph.outputs, ref_out)],
        "quantization": layers,
        "sensitivity": opts.sensitivity,
        "quantization_passes": result.passes_summary(),
        "precision": result.precision,
        "rounding": result.rounding,
        "plots": plots,
        "memory": memory,
        "macs": int(sum(get_op(n.op).macs(n, tgraph) for n in tgraph.nodes)),
        "failures": failures,
    }


def eval_set(eval_data: Any, eval_labels: Any, cal: Samples, fgraph: Graph, opts: BuildOptions,
              tmp: Path) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Validation inputs (the calibration set when no eval set is given) and labels, checked:
    in-memory arrays of the inputs' dtypes, at most ``max_eval_samples``."""
    names, shapes, dtypes = fgraph.inputs, _graph_shapes(fgraph), _graph_dtypes(fgraph)
    if eval_data is not None:
        ev = read_samples(eval_data, "eval", Inputs(names, len(names), [len(s) + 1 for s in shapes]), tmp / "eval",
                          opts.max_eval_samples)
        check_inputs(ev, shapes, names, dtypes, "eval")
    else:
        ev = cal
    n = min(ev.count, opts.max_eval_samples or ev.count)
    labels, source = ev.labels, f"carried by {ev.source}"
    if eval_labels is not None:
        if ev.labels is not None:
            raise EdgeqError(f"the eval data {ev.source} carries labels and eval_labels were given too; give one")
        labels, source = (load_labels(eval_labels), str(eval_labels)) if isinstance(eval_labels, (str, Path)) \
            else (eval_labels, "(array)")
    if labels is not None:
        labels = check_labels(labels, ev.total if ev.total is not None else n, _classes(fgraph), source,
                              at_least=ev.total is None)[:n]
    arrays = [np.array(x[:n], dtype=np.float32 if d.startswith("float") else d) for x, d in zip(ev.arrays, dtypes)]
    return arrays, labels


def _classes(g: Graph) -> int | None:
    """Number of classes of a classifier's first output (N, C); None when it does not tell."""
    t = g.t(g.outputs[0])
    if len(t.shape) == 2 and str(t.dtype).startswith("float") and t.shape[1] >= 2:
        return int(t.shape[1])
    return None


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
        for s in range(0, n, TORCH_ROWS):
            # the exported program is specialised to batch 1 on some models: feed one at a time there
            xs = [torch.from_numpy(np.array(x[s:s + TORCH_ROWS])) for x in ev]
            try:
                y = module(*xs)
            except Exception:
                y = _one_at_a_time(module, xs)
            outs = list(y) if isinstance(y, (tuple, list)) else [y]
            chunks.append([o.detach().numpy() if not o.is_floating_point() else   # argmax: keep indices
                           o.detach().numpy().astype(np.float32) for o in outs])
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def _one_at_a_time(module: Any, xs: list[torch.Tensor]) -> Any:
    """A batch through a module specialised to batch 1: vectorised over the samples by vmap
    (a batch-1 call per sample, one pass of the graph), or a loop where vmap cannot run an op."""
    try:
        y = torch.vmap(lambda *a: module(*[x.unsqueeze(0) for x in a]))(*xs)
        return tuple(o.squeeze(1) for o in y) if isinstance(y, (tuple, list)) else y.squeeze(1)
    except Exception:   # noqa: BLE001 - data-dependent or unbatchable ops: the plain loop
        return _concat_outputs([module(*[x[i:i + 1] for x in xs]) for i in range(xs[0].shape[0])])


def _concat_outputs(ys: list[Any]) -> Any:
    if isinstance(ys[0], (tuple, list)):
        return tuple(torch.cat([y[i] for y in ys]) for i in range(len(ys[0])))
    return torch.cat(ys)


def _target_input(graph: Graph, index: int, x: np.ndarray, rounding: str, input_layout: str) -> np.ndarray:
    """Float data (torch layout) -> the integers the target graph's input expects, in its layout."""
    q = np.concatenate([interpreter.quantize_input(graph, index, x[s:s + 4096], rounding)
                        for s in range(0, x.shape[0], 4096)])
    if graph.layout == "nhwc" and q.ndim == 4 and input_layout == "nhwc":
        q = np.ascontiguousarray(q.transpose(0, 2, 3, 1))
    return q


def _target_layout(graph: Graph, y: np.ndarray) -> np.ndarray:
    """A torch (NCHW) 4-D output in the target graph's layout, for comparison with its outputs."""
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1)) if graph.layout == "nhwc" and y.ndim == 4 else y


def _reference_outputs(graph: Graph, inputs: list[np.ndarray], progress: bool) -> list[np.ndarray]:
    bar = _progress(progress, "reference", inputs[0].shape[0])
    chunks = list(interpreter.run_batched(graph, inputs, interpreter.INT_CHUNK, bar.update if bar is not None else None))
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


