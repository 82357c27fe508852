"""int8 accuracy: edgeq (every calibration method) against ONNX Runtime's quantize_static.

For each model / data pair (digits LeNet, Fashion-MNIST CNN, keyword-spotting DS-CNN):
  * float accuracy (torch, the exported program);
  * edgeq: ``edgeq.build(..., target="onnx", method=m)`` for every m in
    ``edgeq.calibration.METHODS`` (read at run time), accuracy of the integer reference;
  * ONNX Runtime: the same exported program written as float ONNX (torch.onnx.export), prepared
    with ``quant_pre_process`` as ORT's documentation recommends, then ``quantize_static`` (QDQ,
    per-channel, int8 activations and weights) with MinMax / Entropy / Percentile on the same
    calibration samples, run in an onnxruntime session on the same eval samples.

Also the default method with ``--precision auto`` (16x8 layers promoted until the int8 accuracy
loss vs float is 0 pt, measured on the eval samples: a mixed int8/int16 model, shown apart).
Prints one table (best ONNX Runtime method per model marked with *) and optionally writes JSON.
Models and data come from the cached training scripts (build/models/, trained on first use).

Usage: .venv/bin/python benchmarks/accuracy.py [--quick] [--json out.json] [--models kws,...]
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ONNX Runtime configurations: name -> (CalibrationMethod, calibrator options or None).
# quantize_static's Entropy uses 128 histogram bins and 128 quantized bins, so its KL search has a
# single candidate and it returns the MinMax range (files are byte-identical); quantize_static does
# not pass bin counts through. "Entropy-2048" runs ORT's own EntropyCalibrater with TensorRT's
# 2048 bins / 128 quantized bins and hands the ranges to quantize_static as a calibration cache.
ORT_CONFIGS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "MinMax": ("MinMax", None),
    "Entropy": ("Entropy", None),
    "Percentile": ("Percentile", None),
    "Entropy-2048": ("Entropy", {"num_bins": 2048, "num_quantized_bins": 128}),
}
ORT_METHODS = tuple(ORT_CONFIGS)
QUICK_EVAL = 1000
DIGITS_CALIB = ROOT / "calibration" / "digits"


# --------------------------------------------------------------------------------------------
# Model / data pairs
# --------------------------------------------------------------------------------------------

def prepare_digits(out_root: Path) -> dict[str, Any]:
    """The shipped digits LeNet and its data (examples/digits/train.py); trained into
    ``out_root/digits`` when the repository copies are missing."""
    model, d = ROOT / "examples" / "digits" / "lenet.pt2", DIGITS_CALIB
    if not (model.is_file() and all((d / f).is_file() for f in ("calib.npy", "eval.npy", "eval_labels.npy"))):
        from examples.digits.train import main as train_digits
        root = out_root / "digits"
        with contextlib.redirect_stdout(io.StringIO()):
            train_digits(["--out-root", str(root)])
        model, d = root / "examples" / "digits" / "lenet.pt2", root / "calibration" / "digits"
    return {"model": model, "calib": d / "calib.npy", "eval": d / "eval.npy", "eval_labels": d / "eval_labels.npy"}


def prepare_fashion_mnist(out_root: Path) -> dict[str, Any]:
    from examples.fashion_mnist.train import prepare
    return prepare(out_root)


def prepare_kws(out_root: Path) -> dict[str, Any]:
    from examples.kws.train import prepare
    return prepare(out_root)


PAIRS: dict[str, tuple[str, Callable[[Path], dict[str, Any]]]] = {
    "digits": ("digits LeNet", prepare_digits),
    "fashion_mnist": ("Fashion-MNIST CNN", prepare_fashion_mnist),
    "kws": ("KWS DS-CNN", prepare_kws),
}


# --------------------------------------------------------------------------------------------
# edgeq
# --------------------------------------------------------------------------------------------

def edgeq_methods() -> tuple[tuple[str, ...], str]:
    """(calibration methods, build()'s default method), read from the installed edgeq."""
    from edgeq.calibration import METHODS
    from edgeq.options import BuildOptions
    return tuple(METHODS), BuildOptions().method


#: Mixed-precision rows: "<method>+<label>" -> extra build() arguments (int16 activations where
#: the search needs them; not int8-only, so listed apart from the calibration methods).
PRECISION_ROWS: dict[str, dict[str, Any]] = {
    "auto-16x8": {"precision": "auto", "max_accuracy_drop": 0.0},
}


def run_edgeq(model: Path, calib: np.ndarray, x: np.ndarray, y: np.ndarray, method: str,
              out_dir: Path) -> dict[str, Any]:
    """``method`` is a calibration method, optionally "+" a PRECISION_ROWS key."""
    import edgeq
    t = time.perf_counter()
    method, _, extra = method.partition("+")
    rep = edgeq.build(str(model), calib, "onnx", out_dir, eval_data=x, eval_labels=y, method=method,
                      name=f"{model.parent.name}-{method}", raise_on_mismatch=False,
                      **PRECISION_ROWS.get(extra, {}))
    acc = rep["accuracy"]
    return {"accuracy": acc["int8_reference"], "float": acc["float"], "seconds": time.perf_counter() - t,
            "output_sqnr_db": rep["output_sqnr_db"][0],
            "runtimes": {k: v for k, v in acc.items() if k not in ("float", "int8_reference")},
            "failures": rep["failures"], "report": str(out_dir / "report.json"),
            "int16_layers": rep["precision"].get("int16_layers", [])}


# --------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------

def export_float_onnx(model: Path, example: np.ndarray, path: Path) -> Path:
    """The exported program (batch 1) as float ONNX with the TorchScript exporter (the dynamo
    exporter needs onnxscript). BatchNorm is folded by the exporter's constant folding."""
    import torch

    gm = torch.export.load(str(model)).module()
    for p in gm.parameters():
        p.requires_grad_(False)

    class Wrapper(torch.nn.Module):  # ExportedProgram modules refuse .train(False), which export calls
        def __init__(self) -> None:
            super().__init__()
            object.__setattr__(self, "gm", gm)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gm(x)

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
        torch.onnx.export(Wrapper(), (torch.from_numpy(example[:1]),), str(path), input_names=["input"],
                          output_names=["output"], opset_version=17, **kwargs)
    return path


class _Reader:
    """CalibrationDataReader over an array, one sample per call (the export is batch 1)."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name, self.x, self.i = name, x, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: np.ascontiguousarray(self.x[self.i - 1:self.i], dtype=np.float32)}

    def rewind(self) -> None:
        self.i = 0


def ort_session(path: Path):  # noqa: ANN201 - onnxruntime.InferenceSession
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """First output of the model for every sample (run one at a time: the export is batch 1)."""
    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def run_ort(float_onnx: Path, float_out: np.ndarray, calib: np.ndarray, x: np.ndarray, y: np.ndarray,
            method: str, work: Path) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.shape_inference import quant_pre_process

    t = time.perf_counter()
    pre = work / "float_pre.onnx"
    if not pre.is_file():
        quant_pre_process(str(float_onnx), str(pre))
    out = work / f"ort_{method.lower()}.onnx"
    cal_method, calibrator_options = ORT_CONFIGS[method]
    cal_method = getattr(CalibrationMethod, cal_method)
    reader = _Reader(ort_session(pre).get_inputs()[0].name, calib)
    cache = None
    with contextlib.redirect_stdout(io.StringIO()):
        if calibrator_options is not None:
            cache = work / f"ort_{method.lower()}_ranges.json"
            cache.unlink(missing_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                calibrator = create_calibrator(pre, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                               calibrate_method=cal_method, extra_options=calibrator_options)
                calibrator.collect_data(reader)
                save_tensors_data(calibrator.compute_data(), cache)
            reader = None
        quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=cal_method,
                        calibration_cache_path=cache)
    from edgeq.metrics import sqnr_db

    q = ort_outputs(out, x)
    return {"accuracy": float((q.argmax(1) == y).mean()), "seconds": time.perf_counter() - t,
            "output_sqnr_db": sqnr_db(float_out, q), "model": str(out)}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def evaluate(name: str, label: str, paths: dict[str, Any], methods: tuple[str, ...], max_eval: int | None,
             out_root: Path, log: Callable[[str], None]) -> dict[str, Any]:
    calib = np.ascontiguousarray(np.load(paths["calib"]), dtype=np.float32)
    x = np.ascontiguousarray(np.load(paths["eval"])[:max_eval], dtype=np.float32)
    y = np.load(paths["eval_labels"])[:max_eval].astype(np.int64)
    row: dict[str, Any] = {"name": name, "label": label, "model": str(paths["model"]), "calib_samples": len(calib),
                           "eval_samples": len(x), "edgeq": {}, "ort": {}}
    work = out_root / name
    work.mkdir(parents=True, exist_ok=True)
    for m in methods:
        try:
            row["edgeq"][m] = run_edgeq(Path(paths["model"]), calib, x, y, m, work / f"edgeq-{m}")
            row.setdefault("float", row["edgeq"][m]["float"])
            log(f"  {label}: edgeq {m}: {row['edgeq'][m]['accuracy']:.4f} ({row['edgeq'][m]['seconds']:.1f}s)")
        except Exception as e:  # noqa: BLE001 - one failing method must not hide the others
            row["edgeq"][m] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"  {label}: edgeq {m}: FAILED {type(e).__name__}: {e}")
    if "float" not in row:
        row["float"] = _torch_accuracy(Path(paths["model"]), x, y)
    float_onnx = export_float_onnx(Path(paths["model"]), x, work / "float.onnx")
    (work / "float_pre.onnx").unlink(missing_ok=True)
    float_out = ort_outputs(float_onnx, x)
    row["float_onnx_accuracy"] = float((float_out.argmax(1) == y).mean())
    for m in ORT_METHODS:
        try:
            row["ort"][m] = run_ort(float_onnx, float_out, calib, x, y, m, work)
            log(f"  {label}: ORT {m}: {row['ort'][m]['accuracy']:.4f} ({row['ort'][m]['seconds']:.1f}s)")
        except Exception as e:  # noqa: BLE001
            row["ort"][m] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"  {label}: ORT {m}: FAILED {type(e).__name__}: {e}")
    ok = {m: r["accuracy"] for m, r in row["ort"].items() if "accuracy" in r}
    row["best_peer"] = max(ok, key=lambda m: (ok[m], -ORT_METHODS.index(m))) if ok else None
    return row


def _torch_accuracy(model: Path, x: np.ndarray, y: np.ndarray) -> float:
    import torch
    gm = torch.export.load(str(model)).module()
    with torch.no_grad():
        pred = [int(gm(torch.from_numpy(x[i:i + 1])).argmax()) for i in range(len(x))]
    return float((np.array(pred) == y).mean())


def format_table(rows: list[dict[str, Any]], methods: tuple[str, ...], default: str) -> str:
    """Rows = tool / method, columns = models; accuracies in %, * = best ONNX Runtime method."""
    head = ["", *[f"{r['label']} ({r['eval_samples']})" for r in rows]]
    lines: list[list[str]] = [["float (torch)", *[f"{100 * r['float']:.2f}" for r in rows]]]

    def cell(res: dict[str, Any] | None, mark: str = "") -> str:
        if not res:
            return "-"
        if "error" in res:
            return "error"
        flag = "!" if res.get("failures") else ""
        return f"{100 * res['accuracy']:.2f}{mark}{flag}"

    def sqnr(res: dict[str, Any] | None) -> str:
        return f"{res['output_sqnr_db']:.1f}" if res and "output_sqnr_db" in res else "-"

    for m in methods:
        lines.append([f"edgeq {m}" + (" (default)" if m == default else ""),
                      *[cell(r["edgeq"].get(m)) for r in rows]])
    for m in ORT_METHODS:
        lines.append([f"ORT {m}", *[cell(r["ort"].get(m), "*" if r["best_peer"] == m else "") for r in rows]])
    sq = [["output SQNR vs float (dB)", *["" for _ in rows]]]
    sq += [[f"  edgeq {m}", *[sqnr(r["edgeq"].get(m)) for r in rows]] for m in methods]
    sq += [[f"  ORT {m}", *[sqnr(r["ort"].get(m)) for r in rows]] for m in ORT_METHODS]
    delta = []
    for r in rows:
        d, p = r["edgeq"].get(default, {}), r["ort"].get(r["best_peer"] or "", {})
        delta.append(f"{100 * (d['accuracy'] - p['accuracy']):+.2f}" if "accuracy" in d and "accuracy" in p else "-")
    lines.append([f"edgeq {default} - best ORT (pp)", *delta])
    widths = [max(len(x[i]) for x in [head, *lines, *sq]) for i in range(len(head))]
    fmt = lambda cols: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))  # noqa: E731
    rule = fmt(["-" * w for w in widths])
    out = [fmt(head), rule, *map(fmt, lines), rule, *map(fmt, sq)]
    out.append("top-1 accuracy in % on the eval samples (count in brackets); * best ONNX Runtime "
               "quantize_static method (QDQ, per-channel, int8);\n! the edgeq build reported a "
               "bit-exactness failure; SQNR: int8 outputs (logits) against float over all eval samples")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"at most {QUICK_EVAL} eval samples per model")
    ap.add_argument("--max-eval", type=int, help="at most this many eval samples per model")
    ap.add_argument("--models", default=",".join(PAIRS), help=f"comma-separated subset of {','.join(PAIRS)}")
    ap.add_argument("--methods", help="comma-separated edgeq methods (default: all of edgeq.calibration.METHODS, "
                    "then the default method with each PRECISION_ROWS entry, e.g. mse+auto-16x8)")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--models-root", type=Path, default=ROOT / "build" / "models",
                    help="where the training scripts cache models and data")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "accuracy",
                    help="edgeq builds and ORT models are kept here")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in PAIRS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(PAIRS)}")
    all_methods, default = edgeq_methods()
    methods = tuple(m.strip() for m in args.methods.split(",")) if args.methods else \
        all_methods + tuple(f"{default}+{k}" for k in PRECISION_ROWS)
    max_eval = args.max_eval or (QUICK_EVAL if args.quick else None)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731

    t0 = time.perf_counter()
    rows = []
    for name in names:
        label, prep = PAIRS[name]
        t = time.perf_counter()
        paths = prep(args.models_root)
        log(f"{label}: model and data ready in {time.perf_counter() - t:.1f}s "
            f"({'cached' if paths.get('cached', True) else 'trained'})")
        rows.append(evaluate(name, label, paths, methods, max_eval, args.out, log))
    table = format_table(rows, methods, default)
    print(table)
    total = time.perf_counter() - t0
    print(f"total {total:.0f}s")
    if args.json:
        import onnxruntime
        import torch

        import edgeq
        result = {"edgeq_version": edgeq.__version__, "onnxruntime": onnxruntime.__version__,
                  "torch": torch.__version__, "methods": list(methods), "default_method": default,
                  "max_eval": max_eval, "total_s": round(total, 1), "models": rows, "table": table}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
