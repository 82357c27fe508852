"""Command line (click): ``edgeq build``, ``edgeq targets``, ``edgeq inspect``.

Exit codes: 0 success; 1 an artifact that must be bit-exact is not (the report is written);
2 a user mistake (bad option, model, data, target or output), one ``edgeq: error:`` line and
never a traceback; 130 interrupted (Ctrl-C). Shell completion: see the README."""
from __future__ import annotations

import signal
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
from click.core import ParameterSource

from .errors import EdgeqError, EdgeqNote, ValidationError
from .options import BuildOptions

_DEFAULTS = BuildOptions()
_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: sys.argv[1:]); returns the exit code."""
    with warnings.catch_warnings(), _terminate_as_interrupt():
        warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")   # torch.export noise
        warnings.filterwarnings("ignore", module=r"(torch|onnx|onnxruntime)(\.|$)")   # their notices, not ours
        warnings.simplefilter("always", EdgeqNote)
        warnings.showwarning = _show_note
        try:
            result = cli.main(args=argv, prog_name="edgeq", standalone_mode=False)
        except click.UsageError as e:
            where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            _error(f"{e.format_message()}{where}")
            return 2
        except click.ClickException as e:
            _error(e.format_message())
            return 2
        except ValidationError as e:
            print(f"edgeq: validation failed: {e}", file=sys.stderr)
            return 1
        except EdgeqError as e:
            _error(str(e))
            return 2
        except (KeyboardInterrupt, click.Abort):
            print("edgeq: interrupted; nothing was written to the output directory", file=sys.stderr)
            return 130
    return result if isinstance(result, int) else 0


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM cleans up like Ctrl-C (the partial build and temporary files are removed)."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:            # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(message: str) -> None:
    print(f"edgeq: error: {' '.join(message.split())}", file=sys.stderr)


def _show_note(message: Warning | str, category: type, filename: str, lineno: int, file: Any = None,
               line: str | None = None) -> None:
    """Notes (options that do not apply, data taken in once, ...) as one stderr line each; other
    warnings as Python prints them."""
    if issubclass(category, EdgeqNote):
        print(f"edgeq: note: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _complete_target(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from .targets import list_profiles
    try:
        return [n for n in list_profiles(ctx.params.get("targets_dir") or None) if n.startswith(incomplete)]
    except EdgeqError:
        return []


@click.group(context_settings=_SETTINGS)
@click.version_option(package_name="edgeq", prog_name="edgeq")
def cli() -> None:
    """PyTorch -> integer-only int8 artifacts (ONNX QDQ, TFLite, C), each checked against
    edgeq's integer reference interpreter."""


_TARGETS_DIR = click.option("--targets-dir", multiple=True, metavar="DIR",
                            help="a folder of your own NAME.toml target profiles, added to the built-in ones "
                                 "(repeatable; also the environment variable EDGEQ_TARGETS_DIR)")


@cli.command(context_settings=_SETTINGS)
@click.argument("model")
@click.option("--target", required=True, shell_complete=_complete_target,
              help="a target profile (see `edgeq targets`)")
@click.option("--calibration", required=True, metavar="DATA",
              help=".npy float32 (N, *input_shape), .npz with one array per input, or file.py:callable "
                   "returning an iterable of samples or batches")
@click.option("--eval-data", metavar="DATA", help="held-out data, same forms (default: the calibration data)")
@click.option("--eval-labels", metavar="FILE.npy", help="int64 (N,) class labels for accuracy")
@click.option("-o", "--out", required=True, metavar="DIR",
              help="output directory (built beside it, moved into place when the build succeeds)")
@click.option("--force", is_flag=True, help="replace an output directory that is not an earlier edgeq build")
@click.option("--method", type=click.Choice(["minmax", "percentile", "mse", "entropy", "auto"]),
              default=_DEFAULTS.method, show_default=True, help="calibration range method")
@click.option("--percentile", type=float, default=_DEFAULTS.percentile, show_default=True,
              help="--method percentile: the percentile kept at each end (50 < P <= 100)")
@click.option("--input-shape", metavar="SHAPE", help="input shape without batch, e.g. 1,49,10 (factory models)")
@click.option("--io", type=click.Choice(["int8", "float"]), default=_DEFAULTS.io, show_default=True,
              help="TFLite model boundary type")
@click.option("--input-layout", type=click.Choice(["nhwc", "nchw"]), default=_DEFAULTS.input_layout,
              show_default=True, help="TFLite/C layout of 4-D inputs")
@click.option("--name", default=_DEFAULTS.name, show_default=True,
              help="C symbol prefix and file name (C targets): a C identifier")
@click.option("--input-in-arena", is_flag=True,
              help="C targets: keep the input in the model's arena (NAME_input() returns the buffer to fill, "
                   "NAME_run() runs; the first layers may then write over it)")
@click.option("--max-eval-samples", type=int, metavar="N", help="validate on at most N samples")
@click.option("--max-calibration-samples", type=int, metavar="N", help="calibrate on at most N samples")
@click.option("--no-equalization", is_flag=True, help="never apply cross-layer equalization")
@click.option("--no-bias-correction", is_flag=True, help="never apply bias correction")
@click.option("--rounding", type=click.Choice(["nearest", "adaround"]), default=_DEFAULTS.rounding,
              show_default=True,
              help="weight rounding: to nearest, or learned per layer on the calibration data (AdaRound)")
@click.option("--rounding-budget", type=float, metavar="SECONDS", default=_DEFAULTS.rounding_budget,
              show_default=True, help="--rounding adaround: time for all layers together (planned from "
                                           "their MACs, so builds stay reproducible)")
@click.option("--sensitivity", type=click.Choice(["top", "all"]), default=_DEFAULTS.sensitivity, show_default=True,
              help="the report's per-layer sensitivity: simulated for the layers that lose the most SQNR "
                   "(top, a few seconds at most) or for every layer (all)")
@click.option("--precision", type=click.Choice(["int8", "16x8", "auto"]), default=_DEFAULTS.precision,
              show_default=True,
              help="activation precision: int8; 16x8 (int16 activations, int8 weights) wherever an int16 kernel "
                   "exists; auto: promote the most sensitive layers to 16x8 until the target is met (without "
                   "--target-sqnr / --max-accuracy-drop: int8 unless the output SQNR is below 20 dB)")
@click.option("--target-sqnr", type=float, metavar="DB", help="--precision auto: output SQNR to reach (dB vs float)")
@click.option("--max-accuracy-drop", type=float, metavar="PP",
              help="--precision auto: accuracy loss allowed vs float, percentage points (needs --eval-labels)")
@click.option("--int16-layers", metavar="A,B", help="comma-separated layer names or module paths to run in 16x8")
@click.option("--histogram-tensor", metavar="TENSOR",
              help="tensor to plot in plots/ (default: the most sensitive layer's output)")
@click.option("--trust-model", is_flag=True,
              help="load a .pt2 even if it holds pickled objects or code edgeq cannot vet (runs its code!)")
@_TARGETS_DIR
@click.option("--quiet", is_flag=True, help="no progress bars or table")
@click.pass_context
def build(ctx: click.Context, model: str, target: str, calibration: str, eval_data: str | None,
          eval_labels: str | None, out: str, quiet: bool, **given: Any) -> int:
    """Quantize MODEL and emit the TARGET artifact, validated against the integer reference.

    MODEL is a .pt2 file (torch.export.save) or file.py:factory / package.module:factory
    returning an nn.Module (that code runs with your rights)."""
    from .build import build as run_build
    kwargs = {k: v for k, v in given.items() if ctx.get_parameter_source(k) is not ParameterSource.DEFAULT}
    kwargs = _option_values(kwargs)
    report = run_build(model, calibration, target, out, eval_data, eval_labels, progress=not quiet,
                       raise_on_mismatch=False, **kwargs)
    if not quiet:
        click.echo(summary_table(report.data))
    click.echo(f"wrote {Path(out) / 'report.md'}")
    if not report.ok:
        print("edgeq: validation failed: " + "; ".join(report.data["failures"]), file=sys.stderr)
        return 1
    return 0


def _option_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Command-line spellings -> BuildOptions fields."""
    for flag in ("no_equalization", "no_bias_correction"):
        if flag in kwargs:
            kwargs[flag.removeprefix("no_")] = not kwargs.pop(flag)
    if "input_shape" in kwargs:
        kwargs["input_shape"] = parse_shape(kwargs["input_shape"])
    if "int16_layers" in kwargs:
        kwargs["int16_layers"] = [x.strip() for x in kwargs["int16_layers"].split(",") if x.strip()]
    if "targets_dir" in kwargs:
        kwargs["targets_dir"] = list(kwargs["targets_dir"])
    return kwargs


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,49,10`` (or ``1x49x10``) -> (1, 49, 10); positive integers only."""
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(","))
    except ValueError:
        raise EdgeqError(f"--input-shape '{text}' is not a list of integers like 1,49,10") from None
    if not shape or any(d <= 0 for d in shape):
        raise EdgeqError(f"--input-shape '{text}': every dimension must be a positive integer (like 1,49,10)")
    return shape


@cli.command(context_settings=_SETTINGS)
@click.option("--ops", is_flag=True, help="also list the ops each target lowers")
@_TARGETS_DIR
def targets(ops: bool, targets_dir: tuple[str, ...]) -> int:
    """List the target profiles (built-in and from --targets-dir / EDGEQ_TARGETS_DIR)."""
    from .targets import list_profiles, load_profile
    profiles = [load_profile(name, targets_dir) for name in list_profiles(targets_dir)]
    for p in profiles:
        origin = "" if p.source == "built-in" else f" [{p.path}]"
        click.echo(f"{p.name:12s} {p.format:7s} {p.description}{origin}")
    if ops:
        click.echo()
        click.echo(ops_table(profiles))
    return 0


@cli.command(context_settings=_SETTINGS)
@click.argument("build_dir")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="how many layers to show")
def inspect(build_dir: str, top: int) -> int:
    """Show the layers of a build that cost the most accuracy, and what to try."""
    from .inspect_report import inspect as run_inspect
    click.echo(run_inspect(build_dir, top))
    return 0


def ops_table(profiles: list) -> str:
    """Which IR ops (rows) each target (columns) lowers; the unsupported-op errors point here."""
    from .ops import REGISTRY
    from .ops.base import OpDef
    from .targets import target_module
    ops = sorted(k for k, v in REGISTRY.items() if type(v).run_int is not OpDef.run_int and not v.internal)
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
        if v.get("note"):
            lines.append(f"  note, {v['runtime']}: {v['note']}")
        if "instructions_per_inference" in v:
            lines.append(f"  {v['runtime']}: {v['instructions_per_inference']:,} instructions per inference "
                         f"({v.get('instructions_per_mac', 0):.2f} per MAC; QEMU instruction count, not cycles)")
    lines.extend(_speed_lines(d))
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


def _speed_lines(d: dict) -> list[str]:
    """Size and latency before (float) and after (the artifact), where measured."""
    size = d.get("size") or {}
    lines = []
    if size:
        lines.append(f"  size: float weights {size['float_bytes']:,} bytes -> artifacts {size['artifact_bytes']:,} "
                     f"bytes ({size['comparison']})")
    for entry in d.get("latency") or []:
        lines.append(f"  latency {entry['model']:5s} {entry['runtime']}: median {entry['median_ms']:.3f} ms "
                     f"(p10 {entry['p10_ms']:.3f}, p90 {entry['p90_ms']:.3f}, {entry['runs']} runs, batch 1)")
    return lines


def _p(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


if __name__ == "__main__":
    sys.exit(main())
