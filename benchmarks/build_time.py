"""Build time and peak memory of ``edgeq build`` beside ONNX Runtime's whole PTQ job (issue 16).

Per model, on the same model and the same data:

* edgeq: ``edgeq.build(model, calibration, target, out, eval_data=...)`` with default options,
  its time per stage (trace, fold/fuse = the float passes, calibrate, quantize, the accuracy
  passes' scoring, emit, reference, validate, sensitivity, latency) and its peak RSS;
* ORT's whole job: build the torch model, ``torch.onnx.export`` (dynamo=True; dynamo=False when
  the dynamo exporter fails, and the table says so), ``onnxruntime.quantization.
  quant_pre_process``, ``quantize_static`` (QDQ, per-channel, MinMax, int8 activations and
  weights) on the calibration samples, then an eval run of the quantized model on the eval
  samples; its time per step and peak RSS.

Each job runs in its own subprocess (peak RSS is that job's alone: ru_maxrss); the wall time of
a job is the subprocess's, from the interpreter's start (imports included) to its exit. The two
jobs of a model run alternately, ``--repeat`` times each, and the table shows medians.

Usage: .venv/bin/python benchmarks/build_time.py [--target onnx|cortex-m4|...] [--repeat 3]
       [--models a,b | --group zoo,issue,sequence] [--json out.json]
ORT's dynamo export needs the ``onnxscript`` package on the path (``--ort-path DIR`` adds a
folder to the ORT job's PYTHONPATH)."""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

#: the stages of the edgeq table, in order (seconds)
EDGEQ_STAGES = ("trace", "fold_fuse", "calibrate_quantize", "calibrate", "quantize", "scoring", "bias_correction",
                "emit", "reference", "validate", "sensitivity", "plots", "latency")
ORT_STEPS = ("load", "export", "pre_process", "quantize", "eval")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(stages: dict[str, float], key: str, fn: Callable) -> Callable:
    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            stages[key] = stages.get(key, 0.0) + time.perf_counter() - t
    return wrapper


def edgeq_job(name: str, target: str) -> dict:
    """One edgeq build in this process: timings per stage, peak RSS."""
    t_start = time.perf_counter()
    sys.path.insert(0, str(HERE))
    import build_models

    import edgeq
    from edgeq import pipeline
    m = build_models.models()[name]
    stages: dict[str, float] = {}
    # finer stages inside trace and calibrate_quantize: the pipeline's steps, timed where it calls them
    for attr, key in (("prepare_float_graph", "fold_fuse"), ("calibrate_choices", "calibrate"), ("quantize", "quantize"),
                      ("output_sqnrs", "scoring"), ("cross_fitted_sqnrs", "scoring"),
                      ("correct_bias", "bias_correction"), ("cross_fitted_correction", "bias_correction")):
        setattr(pipeline, attr, _timed(stages, key, getattr(pipeline, attr)))
    model = m.factory()
    cal, ev = m.data(m.calibration, 0), m.data(m.eval, 1)
    if any(a.dtype.kind in "iu" for a in cal):    # token ids: edgeq traces an exported program
        import torch
        model = torch.export.export(model, tuple(torch.from_numpy(a[:1]) for a in cal))
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        rep = edgeq.build(model, cal if len(cal) > 1 else cal[0], target, Path(out) / "build",
                          eval_data=ev if len(ev) > 1 else ev[0], raise_on_mismatch=False, name="m")
        build_s = time.perf_counter() - t
    timings = rep["timings"]
    stages["trace"] = timings["trace_s"] - stages.get("fold_fuse", 0.0)
    # the candidates' calibrate / quantize / scoring / bias-correction steps run side by side on
    # two cores: those columns sum the threads' times and can add up to more than the stage's wall
    stages["calibrate_quantize"] = timings["calibrate_quantize_s"]
    for k in ("emit", "reference", "validate", "sensitivity", "plots", "latency"):
        stages[k] = timings.get(f"{k}_s", 0.0)
    measured = sum(1 for r in rep["quantization"] if r.get("sensitivity_measured"))
    return {"job": "edgeq", "model": name, "build_s": build_s, "in_process_s": time.perf_counter() - t_start,
            "stages": stages, "peak_rss_mb": _peak_mb(), "failures": rep["failures"],
            "sensitivity_layers": [measured, len(rep["quantization"])],
            "validation": [(v["runtime"], v["exact_fraction"]) for v in rep["validation"]]}


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over the calibration samples, one at a time."""

    def __init__(self, names: list[str], arrays: list[Any]) -> None:
        self.names, self.arrays, self.i = names, arrays, 0

    def get_next(self) -> dict | None:
        if self.i >= self.arrays[0].shape[0]:
            return None
        feed = {n: a[self.i:self.i + 1] for n, a in zip(self.names, self.arrays)}
        self.i += 1
        return feed


def ort_job(name: str) -> dict:
    """ORT's whole PTQ job on the same model and data, step by step."""
    t_start = time.perf_counter()
    steps: dict[str, float] = {}
    t = time.perf_counter()
    sys.path.insert(0, str(HERE))
    import build_models
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    m = build_models.models()[name]
    model = m.factory()
    cal, ev = m.data(m.calibration, 0), m.data(m.eval, 1)
    steps["load"] = time.perf_counter() - t
    example = tuple(torch.from_numpy(a[:1]) for a in cal)
    exporter, error = "dynamo", None
    with tempfile.TemporaryDirectory() as d:
        f, pre, qpath = Path(d) / "m.onnx", Path(d) / "m_pre.onnx", Path(d) / "m_q.onnx"
        t = time.perf_counter()
        try:
            torch.onnx.export(model, example, str(f), dynamo=True)
        except Exception as e:  # noqa: BLE001 - the fallback is the point
            exporter, error = "torchscript", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            torch.onnx.export(model, example, str(f), dynamo=False)
        steps["export"] = time.perf_counter() - t
        t = time.perf_counter()
        quant_pre_process(str(f), str(pre))
        steps["pre_process"] = time.perf_counter() - t
        names = [i.name for i in ort.InferenceSession(str(pre), providers=["CPUExecutionProvider"]).get_inputs()]
        reader = type("Reader", (_Reader, CalibrationDataReader), {})(names, cal)
        t = time.perf_counter()
        quantize_static(str(pre), str(qpath), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        steps["quantize"] = time.perf_counter() - t
        t = time.perf_counter()
        sess = ort.InferenceSession(str(qpath), providers=["CPUExecutionProvider"])
        for i in range(ev[0].shape[0]):
            sess.run(None, {n: a[i:i + 1] for n, a in zip(names, ev)})
        steps["eval"] = time.perf_counter() - t
    return {"job": "ort", "model": name, "in_process_s": time.perf_counter() - t_start, "stages": steps,
            "peak_rss_mb": _peak_mb(), "exporter": exporter, "export_error": error}


def _run(job: str, name: str, target: str, ort_path: str | None) -> dict:
    """One job in a fresh interpreter; its wall time from the parent's side."""
    env = dict(os.environ)
    paths = [str(ROOT)] + ([ort_path] if ort_path and job == "ort" else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths)
    t = time.perf_counter()
    res = subprocess.run([sys.executable, __file__, "--job", job, "--one", name, "--target", target],
                         capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"job": job, "model": name, "error": tail[:200], "wall_s": wall}
    r = json.loads(res.stdout.strip().splitlines()[-1])
    r["wall_s"] = wall
    return r


def _median(rs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in rs if key in r and "error" not in r]
    return statistics.median(vals) if vals else None


def _stage_medians(rs: list[dict]) -> dict[str, float]:
    ok = [r for r in rs if "error" not in r]
    keys = dict.fromkeys(k for r in ok for k in r["stages"])
    return {k: statistics.median(r["stages"].get(k, 0.0) for r in ok) for k in keys}


def summarize(name: str, eq: list[dict], ort_runs: list[dict]) -> dict:
    e_wall, o_wall = _median(eq, "wall_s"), _median(ort_runs, "wall_s")
    e_mem, o_mem = _median(eq, "peak_rss_mb"), _median(ort_runs, "peak_rss_mb")
    ok_e = [r for r in eq if "error" not in r]
    ok_o = [r for r in ort_runs if "error" not in r]
    return {"model": name, "edgeq_wall_s": e_wall, "ort_wall_s": o_wall,
            "ratio": None if not e_wall or not o_wall else e_wall / o_wall,
            "edgeq_wall_all": [round(r["wall_s"], 2) for r in eq], "ort_wall_all": [round(r["wall_s"], 2) for r in ort_runs],
            "edgeq_peak_mb": e_mem, "ort_peak_mb": o_mem, "mem_ratio": None if not e_mem or not o_mem else e_mem / o_mem,
            "edgeq_stages": _stage_medians(eq), "ort_steps": _stage_medians(ort_runs),
            "exporter": ok_o[0]["exporter"] if ok_o else None,
            "edgeq_error": next((r["error"] for r in eq if "error" in r), None),
            "ort_error": next((r["error"] for r in ort_runs if "error" in r), None),
            "failures": ok_e[0]["failures"] if ok_e else None,
            "sensitivity_layers": ok_e[0]["sensitivity_layers"] if ok_e else None}


def _fmt(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def table(rows: list[dict], target: str) -> str:
    head = (f"| model | edgeq build --target {target} (s) | ORT's whole job (s) | ratio | edgeq peak MB | "
            f"ORT peak MB | memory ratio | ORT export |\n|---|---:|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for r in rows:
        lines.append(f"| {r['model']} | {_fmt(r['edgeq_wall_s'])} | {_fmt(r['ort_wall_s'])} | {_fmt(r['ratio'], '.2f')} | "
                     f"{_fmt(r['edgeq_peak_mb'], '.0f')} | {_fmt(r['ort_peak_mb'], '.0f')} | "
                     f"{_fmt(r['mem_ratio'], '.2f')} | {r['exporter'] or ('failed: ' + str(r['ort_error']))} |")
    lines.append("")
    lines.append("calibrate, quantize, scoring and bias_correction are summed over the threads that run the "
                 "candidates side by side (their sum can exceed calibrate_quantize, the stage's wall time).")
    lines.append("")
    lines.append("| model | " + " | ".join(EDGEQ_STAGES) + " | ORT: " + " / ".join(ORT_STEPS) + " |")
    lines.append("|---|" + "---:|" * len(EDGEQ_STAGES) + "---|")
    for r in rows:
        st = r["edgeq_stages"]
        ort_steps = " / ".join(_fmt(r["ort_steps"].get(k)) for k in ORT_STEPS) if r["ort_steps"] else "-"
        lines.append(f"| {r['model']} | " + " | ".join(_fmt(st.get(k), ".2f") for k in EDGEQ_STAGES) +
                     f" | {ort_steps} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models", default="")
    ap.add_argument("--group", default="zoo,issue,sequence")
    ap.add_argument("--no-ort", action="store_true", help="edgeq alone (the sequence models' 60 s target)")
    ap.add_argument("--ort-path", default=os.environ.get("EDGEQ_BENCH_ORT_PATH"))
    ap.add_argument("--json")
    ap.add_argument("--job", choices=("edgeq", "ort"))
    ap.add_argument("--one")
    args = ap.parse_args()
    if args.one:
        import warnings
        warnings.filterwarnings("ignore")
        print(json.dumps(edgeq_job(args.one, args.target) if args.job == "edgeq" else ort_job(args.one)))
        return
    sys.path.insert(0, str(HERE))
    import build_models
    everything = build_models.models()
    names = [n for n in args.models.split(",") if n] or \
        [n for n, m in everything.items() if m.group in args.group.split(",")]
    rows = []
    for name in names:
        eq: list[dict] = []
        ort_runs: list[dict] = []
        for i in range(args.repeat):      # alternately, the order swapped every round
            order = ("edgeq", "ort") if i % 2 == 0 else ("ort", "edgeq")
            for job in order:
                if job == "ort" and args.no_ort:
                    continue
                (eq if job == "edgeq" else ort_runs).append(_run(job, name, args.target, args.ort_path))
        rows.append(summarize(name, eq, ort_runs))
        r = rows[-1]
        print(f"{name}: edgeq {_fmt(r['edgeq_wall_s'])} s {r['edgeq_wall_all']}, ORT {_fmt(r['ort_wall_s'])} s "
              f"{r['ort_wall_all']}, ratio {_fmt(r['ratio'], '.2f')}, peak {_fmt(r['edgeq_peak_mb'], '.0f')} / "
              f"{_fmt(r['ort_peak_mb'], '.0f')} MB {r['edgeq_error'] or ''} {r['ort_error'] or ''}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    print()
    print(table(rows, args.target))


if __name__ == "__main__":
    main()
