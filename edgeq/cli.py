"""Command line: ``edgeq build``, ``edgeq targets``. User mistakes exit with code 2 and one
clear message, never a traceback."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from .errors import EdgeqError, ValidationError


def main(argv: list[str] | None = None) -> int:
    # torch's own deprecation notices (raised inside torch.export) are noise to edgeq's users
    warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
    parser = argparse.ArgumentParser(prog="edgeq", description="PyTorch -> integer-only int8 artifacts, "
                                     "checked against edgeq's integer reference")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="quantize a model and emit a target artifact")
    b.add_argument("model", help="model.pt2 (torch.export.save) or file.py:factory / package.module:factory")
    b.add_argument("--target", required=True, help="a profile in targets/ (see `edgeq targets`)")
    b.add_argument("--calibration", required=True, help=".npy float32 (N, *input_shape) or .npz per input")
    b.add_argument("--eval-data", help="held-out data, same format (default: the calibration data)")
    b.add_argument("--eval-labels", help=".npy int64 (N,) labels for accuracy")
    b.add_argument("-o", "--out", required=True, help="output directory")
    b.add_argument("--method", default="mse", choices=["minmax", "percentile", "mse", "entropy", "auto"], help="calibration method")
    b.add_argument("--percentile", type=float, default=99.99)
    b.add_argument("--input-shape", help="input shape without batch, e.g. 1,49,10 (factory models)")
    b.add_argument("--io", default="int8", choices=["int8", "float"], help="TFLite model boundary type")
    b.add_argument("--input-layout", default="nhwc", choices=["nhwc", "nchw"], help="TFLite/C input layout")
    b.add_argument("--name", default="model", help="C symbol prefix (C targets)")
    b.add_argument("--max-eval-samples", type=int, help="validate on at most this many samples")
    b.add_argument("--no-equalization", action="store_true", help="never apply cross-layer equalization")
    b.add_argument("--no-bias-correction", action="store_true", help="never apply bias correction")
    b.add_argument("--precision", default="int8", choices=["int8", "16x8", "auto"],
                   help="activation precision: int8; 16x8 (int16 activations, int8 weights) wherever an int16 "
                        "kernel exists; auto: promote the most sensitive layers to 16x8 until the target is met")
    b.add_argument("--target-sqnr", type=float, metavar="DB", help="--precision auto: output SQNR to reach (dB vs float)")
    b.add_argument("--max-accuracy-drop", type=float, metavar="PP",
                   help="--precision auto: accuracy loss allowed vs float, percentage points (needs --eval-labels)")
    b.add_argument("--int16-layers", help="comma-separated layer names or module paths to run in 16x8")
    b.add_argument("--histogram-tensor", help="tensor to plot in plots/ (default: the most sensitive layer's output)")
    b.add_argument("--quiet", action="store_true", help="no progress bars or table")
    i = sub.add_parser("inspect", help="show the layers that cost the most accuracy in a build")
    i.add_argument("build_dir")
    i.add_argument("--top", type=int, default=5)
    t = sub.add_parser("targets", help="list target profiles")
    t.add_argument("--ops", action="store_true", help="also list the ops each target supports")
    args = parser.parse_args(argv)
    try:
        if args.command == "targets":
            return _targets(args.ops)
        if args.command == "inspect":
            from .inspect_report import inspect
            print(inspect(args.build_dir, args.top))
            return 0
        return _build(args)
    except ValidationError as e:
        print(f"edgeq: validation failed: {e}", file=sys.stderr)
        return 1
    except EdgeqError as e:
        print(f"edgeq: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _targets(with_ops: bool) -> int:
    from .targets import list_profiles, load_profile
    profiles = [load_profile(name) for name in list_profiles()]
    for p in profiles:
        print(f"{p.name:12s} {p.format:7s} {p.description}")
    if with_ops:
        print()
        print(ops_table(profiles))
    return 0


def ops_table(profiles: list) -> str:
    """Which IR ops (rows) each target (columns) lowers; the unsupported-op errors point here."""
    from .ops import REGISTRY
    from .ops.base import OpDef
    ops = sorted(k for k, v in REGISTRY.items() if type(v).run_int is not OpDef.run_int and not v.internal)
    from .targets import target_module
    notes = {(p.format, op): why for p in profiles for op, why in target_module(p).refusals().items()}
    width = max(len(o) for o in ops + ["op"]) + 2
    cols = [max(len(p.name), 3) + 2 for p in profiles]
    lines = ["op".ljust(width) + "".join(p.name.ljust(c) for p, c in zip(profiles, cols)) + "16x8"]
    lines.append("-" * (width + sum(cols) + 4))
    footnotes: list[str] = []
    for op in ops:
        cells = []
        for p, c in zip(profiles, cols):
            if op in p.ops:
                mark = "yes"
            elif (p.format, op) in notes:
                footnotes.append(f"({len(footnotes) + 1}) {op} on {p.name}: {notes[(p.format, op)]}")
                mark = f"no({len(footnotes)})"
            else:
                mark = "-"
            cells.append(mark.ljust(c))
        lines.append(op.ljust(width) + "".join(cells) + ("yes" if REGISTRY[op].supports_int16 else "-"))
    lines.append("")
    lines.append("yes: lowered and validated; -: not (yet) lowered, the build stops with an "
                 "unsupported-op error naming the op and its module.")
    lines.append("16x8: the op can run with int16 activations (--precision 16x8|auto, --int16-layers) "
                 "on every target that lowers it.")
    lines.extend(footnotes)
    return "\n".join(lines)


def _build(args: argparse.Namespace) -> int:
    from .build import build
    from .options import BuildOptions
    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(s) for s in args.input_shape.replace("x", ",").split(","))
        except ValueError:
            raise EdgeqError(f"--input-shape '{args.input_shape}' is not a list of integers like 1,49,10") from None
    options = BuildOptions(
        method=args.method, percentile=args.percentile, input_shape=shape, io=args.io,
        input_layout=args.input_layout, name=args.name, max_eval_samples=args.max_eval_samples,
        progress=not args.quiet, equalization=not args.no_equalization,
        bias_correction=not args.no_bias_correction, histogram_tensor=args.histogram_tensor,
        precision=args.precision, target_sqnr=args.target_sqnr, max_accuracy_drop=args.max_accuracy_drop,
        int16_layers=[x.strip() for x in args.int16_layers.split(",") if x.strip()] if args.int16_layers else [],
        raise_on_mismatch=False)
    report = build(args.model, args.calibration, args.target, args.out, args.eval_data, args.eval_labels, options)
    if not args.quiet:
        print(summary_table(report.data))
    print(f"wrote {Path(args.out) / 'report.md'}")
    if not report.ok:
        print("edgeq: validation failed: " + "; ".join(report.data["failures"]), file=sys.stderr)
        return 1
    return 0


def summary_table(d: dict) -> str:
    acc = d.get("accuracy") or {}
    size = sum(a["bytes"] for a in d["artifacts"])
    lines = [f"{d['model']} -> {d['target']}: {size:,} bytes of artifacts, {d['timings']['total_s']:.1f} s"]
    if acc:
        lines.append(f"  accuracy: float {_p(acc.get('float'))}, int8 reference {_p(acc.get('int8_reference'))}")
    lines.append(f"  {'runtime':50s} {'bit-exact':>10s} {'max LSB':>8s} {'top-1 agr':>10s} {'accuracy':>9s}")
    for v in d["validation"]:
        lines.append(f"  {v['runtime'][:50]:50s} {_p(v['exact_fraction']):>10s} {v['max_abs_diff_lsb']:>8d} "
                     f"{_p(v['top1_agreement']):>10s} {_p(v.get('accuracy')):>9s}")
    for v in d["validation"]:
        if "instructions_per_inference" in v:
            lines.append(f"  {v['runtime']}: {v['instructions_per_inference']:,} instructions per inference "
                         f"({v.get('instructions_per_mac', 0):.2f} per MAC; QEMU instruction count, not cycles)")
    prec = d.get("precision") or {}
    if prec.get("int16_layers"):
        goal = "" if prec.get("mode") != "auto" else \
            f" (target {'met' if prec.get('target_met') else 'NOT met, best step kept'})"
        lines.append(f"  precision {prec['mode']}{goal}: {len(prec['int16_layers'])} layers in 16x8 "
                     f"({', '.join(prec['int16_layers'][:6])}{', ...' if len(prec['int16_layers']) > 6 else ''}); "
                     f"C arena {prec['arena_bytes_int8']:,} -> {prec['arena_bytes']:,} bytes")
    mem = d.get("memory") or {}
    extra = [f"{k} {v:,}" for k, v in mem.items() if isinstance(v, int)]
    if extra:
        lines.append("  memory: " + ", ".join(extra))
    return "\n".join(lines)


def _p(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


if __name__ == "__main__":
    sys.exit(main())
