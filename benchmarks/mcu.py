"""Cortex-M benchmark of the C target on the example models and the TFLite Micro twins.

For every model in ``examples.models.MODELS`` and the twins of TFLM's person_detect and
micro_speech (``examples.mcu_twins``: same layer shapes, random weights): quantize (64 synthetic calibration samples),
generate C for ``targets/cortex-m4.toml``, run it under QEMU (mps2-an386) on 20 samples
(bit-exact with the integer reference, or the script fails) and print

* instructions per inference (guest instructions counted by our QEMU TCG plugin: not cycles),
  MACs per inference and instructions per MAC;
* the arena (static RAM of the activations) beside the planner's lower bound and beside
  TensorFlow Lite Micro's arena for our own ``.tflite`` of the same quantized model
  (``edgeq.targets.tflite.memory``: TFLM's host build, ``arena_used_bytes``).  TFLM's arena
  also holds the input and output tensors, which the C API leaves in the caller's buffers,
  so the table shows ``arena + I/O`` too;
* flash (code + weights) and RAM of the model's own cross-compiled objects (arm-none-eabi-size);
* for the twins, TFLite Micro + CMSIS-NN's instructions for its own model of the same
  architecture (issue 14: measured on the same board, QEMU mps2-an386, with the same kind of
  plugin counting between two markers) and edgeq's ratio to them;
* ``--layers``: the per-layer profile (instructions, per MAC, share) of each model.

``--precision int8,16x8`` adds a row per model with every layer that has an int16 kernel in
16x8 (int16 activations): what mixed precision costs in arena, flash and instructions.

``--profile cortex-m3|cortex-m4|cortex-m7`` picks the core (default cortex-m4; the TFLM figures
are Cortex-M4 figures).

Usage: ``python benchmarks/mcu.py [--models a,b] [--samples 20] [--precision int8,16x8] [--profile cortex-m4]
[--layers] [--json out.json]``.
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
from examples.mcu_twins import TFLM_FIGURES, TWINS, twin_data  # noqa: E402
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


def model_and_data(name: str):  # noqa: ANN201 - (factory, shape, data(n, seed))
    if name in TWINS:
        factory, shape = TWINS[name]
        return factory, shape, lambda n, seed: twin_data(name, n, seed)
    factory, shape = MODELS[name]
    return factory, shape, lambda n, seed: synthetic_data(name, n, seed)


def bench_model(name: str, samples: int, work: Path, precision: str = "int8", profile_name: str = "cortex-m4",
                layers: bool = False) -> dict:
    factory, shape, data = model_and_data(name)
    fg = pipeline.float_graph(factory(), [shape])
    qg = pipeline.quantized_graph(fg, [data(CAL_SAMPLES, 0)], precision=PrecisionRequest(precision))
    profile = load_profile(profile_name)
    g = c_target.prepare(qg, profile, {})
    arts = c_target.emit(g, work / name, profile, {"name": name})
    x = interpreter.quantize_input(g, 0, to_graph_layout(data(samples, 1)), c_target.input_rounding)
    ref = interpreter.run(g, [x])
    run = c_target.run(g, arts, profile, [x], None, {})[0]
    exact = all(np.array_equal(o, ref[n]) for o, n in zip(run.outputs, g.outputs))
    if not exact:
        raise SystemExit(f"{name}: {profile_name} output is not bit-exact with the integer reference")
    mem = c_target.memory(g, arts, profile, {})
    tflm, note = tflm_arena(qg, work / f"{name}_tflite")
    io = mem["input_bytes"] + mem["output_bytes"]
    tflm_instr = TFLM_FIGURES.get(name, {}).get("cmsis_nn_instructions") if profile_name == "cortex-m4" else None
    prof = (c_target.layer_profile(g, arts, profile, [x], {}, run.extra["instructions_per_inference"])
            if layers else None)
    return {
        "profile": profile_name,
        "layers": prof["rows"] if prof else None,
        "tflm_cmsis_nn_instructions": tflm_instr,
        "ratio_to_tflm": (run.extra["instructions_per_inference"] / tflm_instr) if tflm_instr else None,
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
            ("TFLM+CMSIS-NN", "tflm_cmsis_nn_instructions", "{:,}"), ("ratio", "ratio_to_tflm", "{:.2f}x"),
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
    ap.add_argument("--models", default=",".join([*TWINS, *MODELS]), help="comma-separated model names")
    ap.add_argument("--profile", default="cortex-m4", help="cortex-m3, cortex-m4 or cortex-m7")
    ap.add_argument("--layers", action="store_true", help="also measure and print each model's per-layer profile")
    ap.add_argument("--samples", type=int, default=20, help="samples run under QEMU per model (>= 20)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--precision", default="int8", help="comma-separated: int8 and/or 16x8 (every layer "
                    "with an int16 kernel in 16x8), one row per model and precision")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeq_mcu_bench_") as tmp:
        for name in args.models.split(","):
            for precision in args.precision.split(","):
                rows.append(bench_model(name, args.samples, Path(tmp) / precision, precision, args.profile,
                                        args.layers))
            print(f"{name}: done", file=sys.stderr, flush=True)
    emulator = " ".join(load_profile(args.profile).raw["emulator"]["command"][1:])
    print(f"{args.profile} (QEMU {emulator}, arm-none-eabi-gcc -O2), bit-exact on "
          f"{args.samples} samples per model; instructions counted by a QEMU plugin, not cycles.")
    print(table(rows))
    if any(r["tflm_cmsis_nn_instructions"] for r in rows):
        print("TFLM+CMSIS-NN: TFLite Micro's release build with CMSIS-NN kernels on its own int8 model of the "
              "same architecture, measured on the same board (QEMU mps2-an386) with the same counting "
              "(a TCG plugin between two markers), quoted from issue 14; edgeq runs the twin "
              "(same layer shapes, random weights).")
    for r in rows:
        if r["layers"]:
            print(f"\nper-layer profile of {r['model']} ({r['instructions_per_inference']:,} instructions):")
            for layer in r["layers"]:
                per = f"{layer['instructions_per_mac']:.2f}" if layer["instructions_per_mac"] else "-"
                print(f"  {layer['layer']:3} {layer['op']:18} {layer['kernel'][:34]:34} "
                      f"{layer['instructions']:>11,} {per:>6}/MAC {100 * layer['share']:5.1f}%")
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
