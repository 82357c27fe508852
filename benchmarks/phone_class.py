"""The phone-class encoder of the real-models issue: a BERT-style encoder of all-MiniLM-L6-v2's
shape (6 layers, hidden 384, 12 heads, vocabulary 30,522, 32 tokens; 22.7 M parameters, random
weights) built for onnx and tflite with default options. Each build runs in its own subprocess
so its peak RSS is its own; the target is 5 minutes and 8 GB per build on this machine.

Usage: .venv/bin/python benchmarks/phone_class.py [--targets onnx,tflite] [--samples 32]"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {"vocab": 30522, "dim": 384, "heads": 12, "layers": 6, "tokens": 32}
BUDGET_S, BUDGET_MB = 300.0, 8192.0


def one(target: str, samples: int) -> dict:
    """Build in this process; returns time, peak RSS, size, SQNR and validation."""
    sys.path.insert(0, str(ROOT))
    import torch

    import edgeq
    from examples.sequence_zoo import BertEncoder, token_data
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = BertEncoder(**SHAPE).eval()
    params = sum(p.numel() for p in model.parameters())
    cal = token_data(samples, SHAPE["tokens"], SHAPE["vocab"], seed=0)
    ev = token_data(samples, SHAPE["tokens"], SHAPE["vocab"], seed=1)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        rep = edgeq.build(model, cal, target, out, eval_data=ev, raise_on_mismatch=False, name="minilm")
        elapsed = time.perf_counter() - t
    return {"target": target, "parameters": params, "build_s": round(elapsed, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "bytes": sum(a["bytes"] for a in rep["artifacts"]), "size": rep["size"],
            "output_sqnr_db": [round(s, 2) for s in rep["output_sqnr_db"]],
            "timings": rep["timings"],
            "validation": [(v["runtime"], v["exact_fraction"], v["max_abs_diff_lsb"]) for v in rep["validation"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="onnx,tflite")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.samples)))
        return
    print(f"{'target':8s} {'build s':>8s} {'peak MB':>8s} {'bytes':>11s} {'x float':>8s} {'SQNR dB':>8s}  validation")
    for target in args.targets.split(","):
        res = subprocess.run([sys.executable, __file__, "--one", target, "--samples", str(args.samples)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{target:8s} failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        ok = "ok" if r["build_s"] <= BUDGET_S and r["peak_rss_mb"] <= BUDGET_MB else "OVER BUDGET"
        print(f"{target:8s} {r['build_s']:8.1f} {r['peak_rss_mb']:8d} {r['bytes']:11,d} "
              f"{r['bytes'] / (4 * r['parameters']):8.3f} {min(r['output_sqnr_db']):8.2f}  "
              f"{[(v[0][:28], v[1], v[2]) for v in r['validation']]}  {ok} (budget {BUDGET_S:.0f} s, {BUDGET_MB:.0f} MB)")
        print(f"{'':8s} stages: {r['timings']}")


if __name__ == "__main__":
    main()
