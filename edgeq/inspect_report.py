"""``edgeq inspect BUILD_DIR``: the layers that cost the most accuracy, where they come from,
and what to try."""
from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import EdgeqError


def load_report(build_dir: str | Path) -> dict:
    path = Path(build_dir) / "report.json"
    if not path.is_file():
        raise EdgeqError(f"no report.json in {build_dir}; run `edgeq build ... -o {build_dir}` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EdgeqError(f"{path} is not valid JSON ({e}); rebuild to regenerate it") from e


def _num(v: object) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    return math.inf if v == "inf" else math.nan


def suggestions(row: dict, report: dict) -> list[str]:
    """Rules of thumb, each tied to a number in the row."""
    tips = []
    alone, acc = _num(row.get("layer_alone_sqnr_db")), _num(row.get("sqnr_db"))
    gain = _num(row.get("higher_precision_gain_db", 0.0))
    ws_min, ws_max = row.get("weight_scale_min"), row.get("weight_scale_max")
    if ws_min and ws_max and ws_max / ws_min > 100:
        tips.append(f"weight channel ranges differ {ws_max / ws_min:.0f}x: cross-layer equalization "
                    "helps when the previous layer is a conv/linear with ReLU (on by default unless "
                    "--no-equalization)")
    if alone < 30:
        method = report.get("calibration", {}).get("method")
        tips.append(f"this layer alone limits the output to {alone:.1f} dB: try another calibration "
                    f"method than '{method}' (--method auto picks per tensor), or more representative "
                    "calibration data")
    if acc < alone - 6:
        tips.append("its accumulated SQNR is far below its layer-alone SQNR: most of the error "
                    "reaching it comes from earlier layers; fix those first")
    if gain > 3 and row.get("dtype") != "int16":
        module = row.get("module") or row["layer"]
        tips.append(f"keeping it in float would gain {gain:.1f} dB at the output: run it with int16 "
                    f"activations (--int16-layers {module}), or let --precision auto --target-sqnr DB "
                    "promote layers until a target is met")
    return tips or ["nothing stands out: this layer is within normal int8 error"]


def inspect(build_dir: str | Path, top: int = 5) -> str:
    r = load_report(build_dir)
    rows = [x for x in r.get("quantization", []) if "layer_alone_sqnr_db" in x]
    rows.sort(key=lambda x: _num(x["layer_alone_sqnr_db"]))
    acc = r.get("accuracy") or {}
    lines = [f"{r['model']} -> {r['target']}"]
    if acc:
        lines.append(f"accuracy: float {100 * acc['float']:.2f} %, integer reference {100 * acc['int8_reference']:.2f} %")
    lines.append("output SQNR of the int8 reference vs float: "
                 + ", ".join(f"{_num(s):.1f} dB" for s in r.get("output_sqnr_db", [])))
    lines.append(f"\nworst {min(top, len(rows))} layers by layer-alone SQNR:")
    for x in rows[:top]:
        gain_acc = x.get("higher_precision_gain_accuracy")
        gain = f", float gain {_num(x.get('higher_precision_gain_db')):.1f} dB" + \
            (f" / {100 * gain_acc:+.2f} pt accuracy" if gain_acc is not None else "")
        lines.append(f"- {x['layer']} ({x['op']}, module '{x['module'] or '<top level>'}'): layer alone "
                     f"{_num(x['layer_alone_sqnr_db']):.1f} dB, accumulated {_num(x['sqnr_db']):.1f} dB{gain}")
        lines += [f"    try: {t}" for t in suggestions(x, r)]
    prec = r.get("precision") or {}
    if prec.get("int16_layers"):
        lines.append(f"\n16x8 layers ({prec['mode']}): {', '.join(prec['int16_layers'])}; "
                     f"C arena {prec['arena_bytes_int8']:,} -> {prec['arena_bytes']:,} bytes")
    for p in r.get("plots", []):
        lines.append(f"plot: {Path(build_dir) / p}")
    return "\n".join(lines)
