"""Learned rounding (``--rounding adaround``) against nearest rounding (issue 17).

Per model: ``edgeq.build(model, calibration, "onnx", eval_data=...)`` twice, ``rounding=
"nearest"`` and ``rounding="adaround"`` (default budget unless ``--budget``); the report's
output SQNR vs float on the eval samples (mean over outputs), top-1 accuracy of the integer
reference where the model has labels, the build's wall time and the rounding's own time, and
whether the budget cut layers short.

Models: the MLPerf Tiny shapes of examples/models.py (ds_cnn, resnet8, mobilenet_v1_025,
fc_autoencoder; deterministic weights, synthetic inputs: 256 calibration / 128 eval samples of
another seed), the digits models (examples/digits/{lenet,mlp}.pt2 on calibration/digits), and
the QAT example's NarrowMobileNetV2 with its planted outlier (examples/qat/train_qat.py: float
training, then PTQ on its 256 calibration samples, accuracy on the 450 test digits).

Usage: .venv/bin/python benchmarks/rounding.py [--models a,b] [--budget S] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import edgeq  # noqa: E402
from examples.models import MODELS, synthetic_data  # noqa: E402

DIGITS = ROOT / "calibration" / "digits"
MLPERF = ("ds_cnn", "resnet8", "mobilenet_v1_025", "fc_autoencoder")
CALIB, EVAL = 256, 128

Case = tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]    # model, calibration, eval, labels


def _mlperf(name: str) -> Callable[[], Case]:
    return lambda: (MODELS[name][0](), synthetic_data(name, CALIB, 0), synthetic_data(name, EVAL, 1), None)


def _digits(pt2: str, suffix: str) -> Callable[[], Case]:
    return lambda: (str(ROOT / "examples" / "digits" / pt2), np.load(DIGITS / f"calib{suffix}.npy"),
                    np.load(DIGITS / f"eval{suffix}.npy"), np.load(DIGITS / "eval_labels.npy"))


def _qat_example() -> Case:
    sys.path.insert(0, str(ROOT / "examples" / "qat"))
    import train_qat as ex
    from examples.datasets import digits
    from examples.fashion_mnist.train import fit, single_thread
    ds = digits()
    with single_thread():
        torch.manual_seed(ex.SEED)
        model = ex.NarrowMobileNetV2()
        fit(model, ds.x_train, ds.y_train, epochs=ex.FLOAT_EPOCHS, batch=64, lr=1e-2, seed=ex.SEED)
        ex.plant_outlier(model)
    return model.eval(), ds.calibration(ex.N_CALIB, ex.SEED), ds.x_test, ds.y_test


CASES: dict[str, Callable[[], Case]] = {**{n: _mlperf(n) for n in MLPERF},
                                        "lenet_digits": _digits("lenet.pt2", ""),
                                        "mlp_digits": _digits("mlp.pt2", "_flat"),
                                        "qat_example": _qat_example}


def run(name: str, budget: float | None) -> dict:
    model, cal, ev, labels = CASES[name]()
    row: dict[str, Any] = {"model": name, "calibration": len(cal), "eval": len(ev)}
    for rounding in ("nearest", "adaround"):
        extra = {"rounding_budget": budget} if budget is not None and rounding == "adaround" else {}
        with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            rep = edgeq.build(model, cal, "onnx", Path(out) / "b", eval_data=ev, eval_labels=labels,
                              rounding=rounding, raise_on_mismatch=False, **extra)
            build_s = time.perf_counter() - t
        r = rep["rounding"]
        row[rounding] = {"sqnr_db": float(np.mean(rep["output_sqnr_db"])), "build_s": build_s,
                         "accuracy": (rep["accuracy"] or {}).get("int8_reference"),
                         "float_accuracy": (rep["accuracy"] or {}).get("float"),
                         "exact": [(v["runtime"], v["exact_fraction"]) for v in rep["validation"]],
                         "failures": rep["failures"], "bias_correction": rep["quantization_passes"]["bias_correction"],
                         "rounding_s": r.get("time_s"), "cut_short": r.get("cut_short"), "kept": r.get("kept"),
                         "sample_sqnr_db": [r.get("sqnr_db_nearest"), r.get("sqnr_db_adaround")],
                         "layers_kept": sum(x["kept"] for x in r.get("layers", [])),
                         "layers": len(r.get("layers", []))}
    return row


def table(rows: list[dict]) -> str:
    out = ["| model | SQNR nearest | SQNR adaround | top-1 nearest | top-1 adaround | build s nearest | "
           "build s adaround | rounding s | layers kept | cut short | kept (sample SQNR nearest -> learned) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        n, a = r["nearest"], r["adaround"]
        acc = [f"{100 * x['accuracy']:.2f} %" if x["accuracy"] is not None else "-" for x in (n, a)]
        out.append(f"| {r['model']} | {n['sqnr_db']:.2f} dB | {a['sqnr_db']:.2f} dB | {acc[0]} | {acc[1]} | "
                   f"{n['build_s']:.1f} | {a['build_s']:.1f} | {a['rounding_s']:.1f} | "
                   f"{a['layers_kept']}/{a['layers']} | {'yes' if a['cut_short'] else 'no'} | "
                   f"{'yes' if a['kept'] else 'no'} ({a['sample_sqnr_db'][0]:.2f} -> {a['sample_sqnr_db'][1]:.2f} dB) |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(CASES))
    ap.add_argument("--budget", type=float)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for name in args.models.split(","):
        rows.append(run(name, args.budget))
        print(json.dumps(rows[-1]), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
