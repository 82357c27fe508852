"""Cortex-M4 benchmark of the C target on the example models.

For every model in ``examples.models.MODELS``: quantize (64 synthetic calibration samples),
generate C for ``targets/cortex-m4.toml``, run it under QEMU (mps2-an386) on 20 samples
(bit-exact with the integer reference, or the script fails) and print

* instructions per inference (guest instructions counted by our QEMU TCG plugin: not cycles),
  MACs per inference and instructions per MAC;
* the arena (static RAM of the activations) beside the planner's lower bound and beside
  TensorFlow Lite Micro's arena for our own ``.tflite`` of the same quantized model
  (``edgeq.targets.tflite.memory``: TFLM's host build, ``arena_used_bytes``).  TFLM's arena
  also holds the input and output tensors, which the C API leaves in the caller's buffers,
  so the table shows ``arena + I/O`` too;
* flash (code + weights) and RAM of the model's own cross-compiled objects (arm-none-eabi-size).

``--precision int8,16x8`` adds a row per model with every layer that has an int16 kernel in
16x8 (int16 activations): what mixed precision costs in arena, flash and instructions.

Usage: ``python benchmarks/mcu.py [--models a,b] [--samples 20] [--precision int8,16x8] [--json out.json]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edgeq import interpreter, pipeline  # noqa: E402
from edgeq.mixed_precision import PrecisionRequest  # noqa: E402
from edgeq.targets import load_profile  # noqa: E402
from edgeq.targets import c as c_target  # noqa: E402
from examples.models import MODELS, synthetic_data  # noqa: E402

CAL_SAMPLES = 64


def tflm_arena(qgraph, out_dir: Path) -> tuple[int | None, str]:
    """TFLite Micro arena bytes for our .tflite of ``qgraph``, or (None, why not)."""
    try:
        from edgeq.targets import tflite as tfl
    except Exception as exc:  # noqa: BLE001 - the TFLite target is optional here
        return None, f"TFLM arena not available: TFLite target not importable ({type(exc).__name__}: {exc})"
    try:
        profile = load_profile("tflite")
        options: dict = {}
        tg = tfl.prepare(qgraph, profile, options)
        arts = tfl.emit(tg, out_dir, profile, options)
        mem = tfl.memory(tg, arts, profile, options)
        return int(mem["tflm_arena_bytes"]), mem.get("tflm_arena_note", "")
    except Exception as exc:  # noqa: BLE001 - report why, keep benchmarking
        return None, f"TFLM arena not available: {type(exc).__name__}: {exc}"


def to_graph_layout(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def bench_model(name: str, samples: int, work: Path, precision: str = "int8") -> dict:
    factory, shape = MODELS[name]
    fg = pipeline.float_graph(factory(), [shape])
    qg = pipeline.quantized_graph(fg, [synthetic_data(name, CAL_SAMPLES, 0)],
                                  precision=PrecisionRequest(precision))
    profile = load_profile("cortex-m4")
    g = c_target.prepare(qg, profile, {})
    arts = c_target.emit(g, work / name, profile, {"name": name})
    x = interpreter.quantize_input(g, 0, to_graph_layout(synthetic_data(name, samples, 1)), c_target.input_rounding)
    ref = interpreter.run(g, [x])
    run = c_target.run(g, arts, profile, [x], None, {})[0]
    exact = all(np.array_equal(o, ref[n]) for o, n in zip(run.outputs, g.outputs))
    if not exact:
        raise SystemExit(f"{name}: Cortex-M4 output is not bit-exact with the integer reference")
    mem = c_target.memory(g, arts, profile, {})
    tflm, note = tflm_arena(qg, work / f"{name}_tflite")
    io = mem["input_bytes"] + mem["output_bytes"]
    return {
        "model": name if precision == "int8" else f"{name} ({precision})",
        "bit_exact_samples": int(x.shape[0]),
        "instructions_per_inference": run.extra["instructions_per_inference"],
        "macs": run.extra["macs"],
        "instructions_per_mac": run.extra["instructions_per_mac"],
        "arena_bytes": mem["arena_bytes"],
        "arena_lower_bound_bytes": mem["arena_lower_bound_bytes"],
        "io_bytes": io,
        "arena_plus_io_bytes": mem["arena_bytes"] + io,
        "tflm_arena_bytes": tflm,
        "tflm_note": note,
        "flash_bytes": mem["flash_bytes"],
        "weights_bytes": mem["weights_bytes"],
        "code_bytes": mem["code_bytes"],
        "ram_bytes": mem["ram_bytes"],
        "stack_bytes": mem["stack_bytes"],
    }


def table(rows: list[dict]) -> str:
    cols = [("model", "model", "{}"), ("instr/inference", "instructions_per_inference", "{:,}"),
            ("MACs", "macs", "{:,}"), ("instr/MAC", "instructions_per_mac", "{:.2f}"),
            ("arena", "arena_bytes", "{:,}"), ("lower bound", "arena_lower_bound_bytes", "{:,}"),
            ("arena+I/O", "arena_plus_io_bytes", "{:,}"), ("TFLM arena", "tflm_arena_bytes", "{:,}"),
            ("flash", "flash_bytes", "{:,}"), ("RAM", "ram_bytes", "{:,}")]
    cells = [[h for h, _, _ in cols]]
    for r in rows:
        cells.append([("n/a" if r[k] is None else f.format(r[k])) for _, k, f in cols])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = []
    for j, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated model names")
    ap.add_argument("--samples", type=int, default=20, help="samples run under QEMU per model (>= 20)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--precision", default="int8", help="comma-separated: int8 and/or 16x8 (every layer "
                    "with an int16 kernel in 16x8), one row per model and precision")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_mcu_bench_") as tmp:
        for name in args.models.split(","):
            for precision in args.precision.split(","):
                rows.append(bench_model(name, args.samples, Path(tmp) / precision, precision))
            print(f"{name}: done", file=sys.stderr, flush=True)
    print("Cortex-M4 (QEMU mps2-an386, arm-none-eabi-gcc -O2), bit-exact on "
          f"{args.samples} samples per model; instructions counted by a QEMU plugin, not cycles.")
    print(table(rows))
    notes = sorted({r["tflm_note"] for r in rows if r["tflm_note"]})
    for n in notes:
        print(f"TFLM: {n}")
    print("arena excludes the caller's input/output buffers (arena+I/O is the like-for-like "
          "figure for TFLM's arena, which holds them); flash/RAM: the model's own objects "
          "(weights + code, arena), not the harness.")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
