"""report.json (for machines) and report.md (for people), written atomically."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .targets.base import atomic_write_text


def _clean(v: Any) -> Any:
    """JSON has no inf/nan: write them as strings so the file stays standard JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_report(data: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / "report.json", json.dumps(_clean(data), indent=2, sort_keys=False) + "\n")
    atomic_write_text(out / "report.md", render_markdown(data))


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


def _db(v: Any) -> str:
    return "exact" if isinstance(v, float) and math.isinf(v) else (f"{v:.1f} dB" if isinstance(v, (int, float)) else str(v))


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)    # None: an unquantized (index) tensor


def _precision_section(p: dict[str, Any]) -> list[str]:
    """Which layers run in 16x8, why (the auto search's steps) and the arena they cost."""
    if p.get("mode", "int8") == "int8" and not p.get("int16_layers"):
        return []
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
    lines += ["", "Output SQNR of the int8 reference against torch float: "
              + ", ".join(_db(s) for s in d["output_sqnr_db"]) + "."]
    if d.get("memory"):
        lines += ["", "## Memory", ""]
        lines += [f"- {k}: {v:,}" if isinstance(v, int) else f"- {k}: {v}" for k, v in d["memory"].items()
                  if not isinstance(v, (list, dict))]
    lines += _precision_section(d.get("precision") or {})
    lines += ["", "## Per-layer quantization", "",
              "SQNR accumulated: int8 reference vs float at the layer's output. Layer alone: the model "
              "output's SQNR when only this layer is quantized. Float gain: output SQNR (and accuracy) "
              "gained by keeping only this layer in float.", "",
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
                  "(each is kept only when it raises output SQNR on the calibration sample)."]
    t = d["timings"]
    lines += ["", "## Timings", "", ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in t.items()), ""]
    return "\n".join(lines)
