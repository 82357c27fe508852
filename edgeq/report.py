"""The build report: its per-layer rows, plots and entries, and report.json (for machines) and
report.md (for people), written atomically."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from . import interpreter, metrics, plots
from .errors import EdgeqError
from .files import atomic_write_text
from .ir import Graph
from .sensitivity import SENSITIVITY_SAMPLES, adds_error, layer_sensitivity


def _clean(v: Any) -> Any:
    """JSON has no inf/nan: write them as strings so the file stays standard JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def artifact_entry(path: Path, out: Path) -> dict:
    data = path.read_bytes()
    return {"path": str(path.relative_to(out)), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def io_entry(graph: Graph, name: str, input_layout: str) -> dict:
    t = graph.t(name)
    scale, zp = t.quant.scalar() if t.quant is not None else (None, None)   # argmax: int32 indices
    layout = None
    if len(t.shape) == 4:
        layout = "NHWC" if graph.layout == "nhwc" and not (name in graph.inputs and input_layout == "nchw") else "NCHW"
    return {"name": name, "shape": list(t.shape), "layout": layout, "dtype": t.dtype,
            "scale": scale, "zero_point": zp}


#: by default (``--sensitivity top``) at most this many layers get the two sensitivity
#: simulations (each a run of the model from the layer on), and no more than the node budget
#: allows (a layer costs 2 x the graph's node count): the rest are marked as not measured in the
#: report. ``--sensitivity all`` simulates every layer.
SENSITIVITY_TOP_LAYERS = 8
#: samples per run of the per-layer SQNR comparison (the figures are those of one run) and of
#: the float run behind the tensor histogram
REPORT_CHUNK = 16
SENSITIVITY_NODE_BUDGET = 120_000


def layer_report(fgraph: Graph, qgraph: Graph, inputs: list[np.ndarray], labels: np.ndarray | None = None,
                 sensitivity: str = "top") -> list[dict]:
    """Per layer: output scale / zero point, weight scale range, SQNR of the int8 reference vs
    float at the layer's output (accumulated), and the sensitivity figures of edgeq.sensitivity
    for the layers where the accumulated SQNR drops most (every layer with ``sensitivity="all"``)."""
    # each float tensor is compared as the float run produces it, then dropped, and the samples
    # go through in chunks: neither run's values of the whole graph are ever held for them all
    compared_with: dict[str, list[str]] = {}
    for node in qgraph.nodes:
        compared_with.setdefault(qgraph.range_source(node.outputs[0]), []).append(node.outputs[0])
    totals: dict[str, metrics.SqnrSum] = {}
    for start in range(0, inputs[0].shape[0], REPORT_CHUNK):
        chunk = [x[start:start + REPORT_CHUNK] for x in inputs]
        qvals = interpreter.run(qgraph, [interpreter.quantize_input(qgraph, i, x) for i, x in enumerate(chunk)],
                                keep=True)

        def compare(name: str, value: np.ndarray) -> None:
            for out in compared_with.get(name, ()):
                totals.setdefault(out, metrics.SqnrSum()).add(value, interpreter.dequantize(qgraph, out, qvals[out]))

        interpreter.run(fgraph, chunk, on_tensor=compare)
        del qvals
    accumulated = {name: total.db() for name, total in totals.items()}
    rows = []
    for node in qgraph.nodes:
        out = node.outputs[0]
        q = qgraph.t(out).quant
        scale, zp = q.scalar() if q is not None else (None, None)   # argmax: int32 indices
        row: dict[str, Any] = {"layer": node.name, "op": node.op, "module": node.module_path, "tensor": out,
                               "dtype": qgraph.t(out).dtype, "output_scale": scale, "output_zero_point": zp,
                               "sqnr_db": accumulated[out]}
        if len(node.inputs) > 1 and qgraph.t(node.inputs[1]).quant is not None and qgraph.t(node.inputs[1]).is_constant:
            ws = qgraph.t(node.inputs[1]).quant.scale
            row["weight_scale_min"], row["weight_scale_max"] = float(ws.min()), float(ws.max())
        rows.append(row)
    chosen = _sensitivity_layers(qgraph, accumulated, fgraph, sensitivity == "all")
    sens = layer_sensitivity(fgraph, qgraph, inputs, labels, layers=chosen)
    for row in rows:
        row.update(sens.get(row["layer"], {}))
        row["sensitivity_measured"] = row["layer"] in sens
    return rows


def _sensitivity_layers(qgraph: Graph, accumulated: dict[str, float], fgraph: Graph, all_layers: bool) -> list[str]:
    """The layers to simulate: those that add error of their own, ranked by how much SQNR is
    lost across them, as many as the limits allow (all of them with ``all_layers``)."""
    float_names = {n.name for n in fgraph.nodes}
    layers = [n for n in qgraph.nodes if n.name in float_names and adds_error(n)]
    if all_layers:
        return [n.name for n in layers]

    def drop(node: Any) -> float:
        before = [accumulated.get(i, 200.0) for i in node.inputs if not qgraph.t(i).is_constant]
        return min(min(before, default=200.0), 200.0) - min(accumulated[node.outputs[0]], 200.0)

    limit = max(1, min(SENSITIVITY_TOP_LAYERS, SENSITIVITY_NODE_BUDGET // (2 * max(len(fgraph.nodes), 1))))
    ranked = sorted(layers, key=lambda n: -drop(n))[:limit]
    keep = {n.name for n in ranked}
    return [n.name for n in layers if n.name in keep]


def plots_for(fgraph: Graph, qgraph: Graph, sample: list[np.ndarray], layers: list[dict], out: Path,
              tensor: str | None) -> list[str]:
    paths = [plots.sqnr_bar_chart(layers, out / "plots" / "sqnr.svg")]
    if tensor is None:   # default: the output of the layer that hurts most on its own
        worst = min((r for r in layers if r["output_scale"] is not None),
                    key=lambda r: r.get("layer_alone_sqnr_db", np.inf))
        tensor = worst["tensor"]
    if tensor not in qgraph.tensors or qgraph.t(tensor).quant is None or qgraph.t(tensor).is_constant:
        raise EdgeqError(f"--histogram-tensor '{tensor}' is not an activation of the model; "
                         f"choose one of: {', '.join(r['tensor'] for r in layers)}")
    values = np.concatenate([interpreter.run(fgraph, [x[s:s + REPORT_CHUNK] for x in sample], keep={tensor})[tensor]
                             for s in range(0, sample[0].shape[0], REPORT_CHUNK)])   # that tensor alone is kept
    scale, zp = qgraph.t(tensor).quant.scalar()
    info = np.iinfo(qgraph.t(tensor).dtype)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tensor)
    paths.append(plots.tensor_histogram(values, (info.min - zp) * scale, (info.max - zp) * scale, tensor,
                                        out / "plots" / f"histogram_{safe}.svg", qgraph.t(tensor).dtype))
    return [str(p.relative_to(out)) for p in paths]


def memory_plots(memory: dict, out: Path) -> list[str]:
    """The memory timeline of a C build (the plan per layer beside TFLite Micro's arena)."""
    if not memory.get("timeline"):
        return []
    path = plots.memory_timeline(memory["timeline"], out / "plots" / "memory_timeline.svg",
                                 memory.get("tflm_arena_bytes"))
    return [str(path.relative_to(out))]


def _memory_section(m: dict[str, Any]) -> list[str]:
    lines = ["", "## Memory", ""]
    if "c_api" in m:
        ram = m["ram_model_bytes"]
        lines += [f"C API: {m['c_api']}. Model RAM {ram:,} bytes: arena {m['arena_bytes']:,}"
                  + ("" if m["input_in_arena"] else f" + input {m['input_bytes']:,}")
                  + f" + output {m['output_bytes']:,} (the classic API would need {m['ram_model_bytes_classic_api']:,}). "
                  f"Outputs overlap the inputs they consume in {m['overlapping_layers']} layers; bound without "
                  f"overlaps {m['arena_lower_bound_bytes']:,} bytes, with them {m['arena_overlap_bound_bytes']:,}."]
        if m.get("tflm_arena_bytes"):
            lines.append(f"TFLite Micro's arena for our .tflite of the same model: {m['tflm_arena_bytes']:,} bytes "
                         f"(input and output inside): edgeq needs {ram / m['tflm_arena_bytes']:.2f}x.")
        elif "tflm_arena_note" in m:
            lines.append(f"TFLite Micro's arena: {m['tflm_arena_note']}.")
        lines.append("")
    lines += [f"- {k}: {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"- {k}: {v}"
              for k, v in m.items() if not isinstance(v, (list, dict))]
    return lines


def accuracy_section(float_out: list[np.ndarray], ref_out: list[np.ndarray], runs: list,
                     labels: np.ndarray | None) -> dict:
    if labels is None:
        return {}
    acc = {"float": metrics.accuracy(float_out[0], labels), "int8_reference": metrics.accuracy(ref_out[0], labels)}
    for r in runs:
        acc[r.runtime] = metrics.accuracy(r.outputs[0], labels)
    return acc


def write_report(data: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / "report.json", json.dumps(_clean(data), indent=2, sort_keys=False) + "\n")
    atomic_write_text(out / "report.md", render_markdown(data))


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def _db(v: Any) -> str:
    return "exact" if isinstance(v, float) and math.isinf(v) else (f"{v:.1f} dB" if isinstance(v, (int, float)) else str(v))


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)    # None: an unquantized (index) tensor


def _sensitivity_note(rows: list[dict], mode: str) -> str:
    """What the sensitivity columns cover: which layers were simulated, which were not."""
    measured = sum(1 for r in rows if r.get("sensitivity_measured"))
    which = ("every layer that adds error of its own (--sensitivity all)" if mode == "all"
             else f"the layers that add error of their own ranked by the accumulated SQNR lost across them, at "
                  f"most {SENSITIVITY_TOP_LAYERS} and within a budget of {SENSITIVITY_NODE_BUDGET:,} node runs "
                  f"(--sensitivity all simulates every one)")
    return (f"Layer alone and float gain were simulated for {measured} of {len(rows)} layers, on at most "
            f"{SENSITIVITY_SAMPLES} eval samples: {which}; '-' marks a layer not simulated.")


def _precision_section(p: dict[str, Any]) -> list[str]:
    """Which layers run in 16x8, why (the auto search's steps) and the arena they cost."""
    if p.get("mode", "int8") == "int8" and not p.get("int16_layers"):
        return []
    if p.get("searched") is False:
        return ["", "## Mixed precision", "",
                f"Mode `auto` without a target: every activation int8, since the int8 output SQNR on the "
                f"calibration sample is {_db(p['int8_sqnr_db'])} (floor {p['target_sqnr_db']} dB; "
                f"{p['reason']}). No layer was tried in 16x8."]
    lines = ["", "## Mixed precision", "",
             f"Mode `{p['mode']}`: {len(p['int16_layers'])} layers run with int16 activations and int8 "
             f"weights (16x8): {', '.join(p['int16_layers']) or 'none'}. C arena "
             f"{p['arena_bytes_int8']:,} bytes in int8, {p['arena_bytes']:,} bytes as built."]
    if p["mode"] == "auto":
        goal = [f"output SQNR >= {p['target_sqnr_db']} dB"] if p.get("target_sqnr_db") is not None else []
        if p.get("max_accuracy_drop") is not None:
            goal.append(f"accuracy within {p['max_accuracy_drop']} pt of float ({_pct(p.get('float_accuracy'))})")
        lines += ["", f"Target: {' and '.join(goal)}: {'met' if p['target_met'] else 'not met; the best step is kept'}. "
                  "Layers were promoted one at a time, most sensitive first:", "",
                  "| step | promoted | output SQNR | accuracy | C arena bytes |", "|---:|---|---:|---:|---:|"]
        for i, st in enumerate(p["steps"]):
            mark = " (chosen)" if i == p.get("chosen_step") else ""
            lines.append(f"| {i}{mark} | {st['promoted'] or '- (all int8)'} | {_db(st['output_sqnr_db'])} | "
                         f"{_pct(st['accuracy'])} | {st['arena_bytes']:,} |")
        for r in p.get("refused") or []:
            lines.append(f"\nNot promoted, the target cannot run it in 16x8: `{r['layer']}`: {r['reason']}")
    return lines


def _rounding_section(r: dict[str, Any] | None) -> list[str]:
    """Learned rounding (``passes.adaround``) per layer: what it computed, kept and skipped."""
    if not r or r.get("tried") != "adaround":
        return []
    rows = r["layers"]
    kept = [x for x in rows if x["kept"]]
    cut = [x["layer"] for x in rows if x["cut_short"]]
    scores = (f"output SQNR on {r['checked_on']} {r['sqnr_db_adaround']:.2f} dB against "
              f"{r['sqnr_db_nearest']:.2f} dB with nearest rounding")
    verdict = (f"Learned rounding kept: {scores}." if r["kept"] else
               f"Learned rounding not kept: {scores}, which the build uses (the layers' lower errors did not "
               "carry over to the output).")
    lines = ["", "## Learned rounding", "", verdict, "",
             f"AdaRound on {r['samples']} calibration samples, {r['time_s']:.1f} s of a {r['budget_s']:g} s budget: "
             f"{len(rows)} weighted layers optimised, the learned rounding kept on {len(kept)}"
             + (" (the others keep nearest rounding, which reconstructed their outputs at least as well). "
                if len(kept) < len(rows) else ". ")
             + (f"To fit the budget (by an estimate of each step's time from the layer's MACs, so the build stays "
                f"reproducible) every layer ran {rows[0]['iterations'] if rows else 0} steps instead of the full "
                "schedule. " if cut else "Every layer ran the full schedule. ")
             + (f"The clock stopped {', '.join(r['stopped_by_clock'])} early (past 3x the budget: this build "
                "is not reproducible). " if r.get("stopped_by_clock") else "")
             + (f"Not optimised (no float forward in torch for learned rounding): {', '.join(r['skipped'])}. "
                if r.get("skipped") else "")
             + "Error: ||y_float - y||^2 / ||y_float||^2 of the layer's output on its integer inputs; up: share of "
             "weights rounded up (ceil of w/s); changed: share differing from nearest.", "",
             "| layer | op | weights | error nearest | error learned | up nearest | up learned | changed | "
             "iterations | time s | kept |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for x in rows:
        lines.append(f"| {x['layer']} | {x['op']} | {x['weights']:,} | {x['error_nearest']:.3e} | "
                     f"{x['error_learned']:.3e} | {_pct(x['up_nearest'])} | {_pct(x['up_learned'])} | "
                     f"{_pct(x['changed'])} | {x['iterations']}{' (clock)' if x.get('stopped_by_clock') else ''} | "
                     f"{x['time_s']:.2f} | {'yes' if x['kept'] else 'no'} |")
    return lines


def _speed_section(d: dict[str, Any]) -> list[str]:
    """Size and latency before (float) and after (the artifact) on this host."""
    size, entries = d.get("size") or {}, d.get("latency") or []
    if not size and not entries:
        return []
    lines = ["", "## Size and speed", ""]
    if size:
        lines.append(f"Float weights {size['float_bytes']:,} bytes; artifact {size['artifact_bytes']:,} bytes "
                     f"({size['artifact_measure']}), {size['comparison']}.")
    if entries:
        lines += ["", "Latency of one inference (batch 1, one thread), median over repeated runs with the "
                  "10th-90th percentile spread:", "",
                  "| model | runtime | median ms | p10 ms | p90 ms | runs |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {e['model']} | {e['runtime']} | {e['median_ms']:.4f} | {e['p10_ms']:.4f} | {e['p90_ms']:.4f} | "
                  f"{e['runs']} |" for e in entries]
    if d.get("target_format") == "c":
        lines += ["", "C targets: speed is the instruction count per inference under QEMU (the cortex-m4 profile)."]
    return lines + layer_profile_section(d.get("layer_profile"))


def layer_profile_section(prof: dict[str, Any] | None) -> list[str]:
    """The per-layer instruction profile measured under QEMU (``targets.c.layer_profile``)."""
    if not prof:
        return []
    lines = ["", "## Per-layer profile", "",
             f"Guest instructions per layer on one sample, counted under QEMU by the plugin ({prof['note']}); "
             f"total {prof['total_instructions']:,}, of which {prof['invoke_overhead_instructions']:,} outside "
             "the layers.", "",
             "| layer | op | kernel | instructions | MACs | per MAC | share |", "|---:|---|---|---:|---:|---:|---:|"]
    for r in prof["rows"]:
        per = f"{r['instructions_per_mac']:.2f}" if r["instructions_per_mac"] else ""
        lines.append(f"| {r['layer']} | {r['op']} | `{r['kernel']}` | {r['instructions']:,} | {r['macs']:,} | "
                     f"{per} | {100 * r['share']:.1f}% |")
    return lines


def render_markdown(d: dict[str, Any]) -> str:
    lines = [f"# edgeq build report: {d['model']} -> {d['target']}", "",
             f"edgeq {d['edgeq_version']}, calibration `{d['calibration']['method']}` on "
             f"{d['calibration']['samples']} samples, {d['macs']:,} MACs per inference, "
             f"built in {d['timings']['total_s']:.1f} s.", ""]
    if d.get("failures"):
        lines += ["## FAILED", ""] + [f"- {f}" for f in d["failures"]] + [""]
    lines += ["## Artifacts", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    lines += [f"| `{a['path']}` | {a['bytes']:,} | `{a['sha256'][:16]}…` |" for a in d["artifacts"]]
    lines += ["", "## Inputs and outputs", "", "| kind | name | shape | layout | dtype | scale | zero point |",
              "|---|---|---|---|---|---:|---:|"]
    for kind in ("inputs", "outputs"):
        for t in d[kind]:
            lines.append(f"| {kind[:-1]} | `{t['name']}` | {t['shape']} | {t['layout'] or '-'} | {t['dtype']} | "
                         f"{_num(t['scale'], '.6g')} | {_num(t['zero_point'], 'd')} |")
    if d.get("accuracy"):
        lines += ["", "## Accuracy", "", "| model | top-1 |", "|---|---:|"]
        lines += [f"| {k} | {_pct(v)} |" for k, v in d["accuracy"].items()]
    lines += ["", "## Agreement with the integer reference", "",
              "| runtime | must be exact | samples | bit-exact | max diff (LSB) | top-1 agreement |",
              "|---|---|---:|---:|---:|---:|"]
    for v in d["validation"]:
        lines.append(f"| {v['runtime']} | {'yes' if v['must_be_exact'] else 'no'} | {v['samples']} | "
                     f"{_pct(v['exact_fraction'])} | {v['max_abs_diff_lsb']} | {_pct(v['top1_agreement'])} |")
    lines += [line for v in d["validation"] if v.get("note") for line in ("", f"{v['runtime']}: {v['note']}.")]
    lines += ["", "Output SQNR of the int8 reference against torch float: "
              + ", ".join(_db(s) for s in d["output_sqnr_db"]) + "."]
    if d.get("memory"):
        lines += _memory_section(d["memory"])
    lines += _speed_section(d)
    lines += _precision_section(d.get("precision") or {})
    lines += _rounding_section(d.get("rounding"))
    lines += ["", "## Per-layer quantization", "",
              "SQNR accumulated: int8 reference vs float at the layer's output. Layer alone: the model "
              "output's SQNR when only this layer is quantized. Float gain: output SQNR (and accuracy) "
              "gained by keeping only this layer in float. " + _sensitivity_note(d["quantization"], d.get("sensitivity", "top")), "",
              "| layer | op | module | out type | out scale | out zp | SQNR accumulated | layer alone | float gain |",
              "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in d["quantization"]:
        gain = _db(r.get("higher_precision_gain_db", "-"))
        if r.get("higher_precision_gain_accuracy") is not None:
            gain += f", {100 * r['higher_precision_gain_accuracy']:+.2f} pt"
        lines.append(f"| {r['layer']} | {r['op']} | `{r['module'] or '-'}` | {r.get('dtype', 'int8')} | "
                     f"{_num(r['output_scale'], '.5g')} | "
                     f"{_num(r['output_zero_point'], 'd')} | {_db(r['sqnr_db'])} | "
                     f"{_db(r.get('layer_alone_sqnr_db', '-'))} | "
                     f"{gain} |")
    if d.get("plots"):
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in d["plots"]]
    passes = d.get("quantization_passes") or {}
    if passes:
        lines += ["", f"Cross-layer equalization: {'applied' if passes.get('equalization') else 'not applied'}; "
                  f"bias correction: {'applied' if passes.get('bias_correction') else 'not applied'} "
                  "(each is kept only when it raises output SQNR on the calibration sample, worst output first); "
                  f"ranges: {passes.get('ranges') or '-'}; weight rounding: "
                  f"{passes.get('rounding', 'nearest')}."]
    t = d["timings"]
    lines += ["", "## Timings", "", ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in t.items()), ""]
    return "\n".join(lines)
