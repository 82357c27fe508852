"""Build time, peak memory and ONNX Runtime agreement per model (ONNX QDQ target).

Each model is built in its own subprocess so peak RSS (ru_maxrss) is that build's alone.
Usage: .venv/bin/python benchmarks/build_time.py [--target onnx] [--samples 64]"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(name: str, target: str, samples: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import time

    import edgeq
    from examples.models import MODELS, synthetic_data
    factory, _ = MODELS[name]
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        rep = edgeq.build(factory(), synthetic_data(name, samples, 0), target, out,
                          eval_data=synthetic_data(name, samples, 1), raise_on_mismatch=False)
        elapsed = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"model": name, "build_s": elapsed, "peak_rss_mb": peak_mb, "macs": rep["macs"],
            "bytes": sum(a["bytes"] for a in rep["artifacts"]),
            "validation": [(v["runtime"], v["exact_fraction"], v["max_abs_diff_lsb"], v["top1_agreement"])
                           for v in rep["validation"]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="onnx")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--one")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.target, args.samples)))
        return
    sys.path.insert(0, str(ROOT))
    from examples.models import MODELS
    print(f"{'model':22s} {'MACs':>10s} {'build s':>8s} {'peak MB':>8s} {'bytes':>9s}  runtime: bit-exact / max LSB / top-1 agr")
    for name in MODELS:
        res = subprocess.run([sys.executable, __file__, "--one", name, "--target", args.target,
                              "--samples", str(args.samples)], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{name:22s} FAILED: {res.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        vals = "; ".join(f"{rt.split('(')[-1].rstrip(')')}: {100*e:.1f}% / {d} / "
                         f"{'-' if a is None else f'{100*a:.0f}%'}" for rt, e, d, a in r["validation"])
        print(f"{name:22s} {r['macs']:>10,d} {r['build_s']:>8.2f} {r['peak_rss_mb']:>8.0f} {r['bytes']:>9,d}  {vals}")


if __name__ == "__main__":
    main()
