"""Where a model's flash is: per object and per symbol, on the objects the C target measures.

For each model (the twins of ``examples.mcu_twins`` and ``examples.models``): quantize it as
``benchmarks/mcu.py`` does (64 synthetic calibration samples), emit C for a profile, compile
the model's own objects (``c_target.memory``, which also gives ``flash_bytes`` = text + data of
those objects) and print each object's flash and, with ``--symbols``, each kernel object's
functions and constants from ``arm-none-eabi-nm --size-sort -S``.  No QEMU run.

Usage: ``python benchmarks/flash_objects.py [--models a,b] [--profile cortex-m4] [--symbols]``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edgeq import pipeline
from edgeq.mixed_precision import PrecisionRequest
from edgeq.targets import c as c_target
from edgeq.targets import load_profile
from examples.mcu_twins import TWINS, twin_data
from examples.models import MODELS, synthetic_data

CAL_SAMPLES = 64


def model_memory(name: str, work: Path, profile_name: str) -> dict:
    """``c_target.memory`` of ``name``'s C, its objects kept under ``work / name / build``."""
    if name in TWINS:
        factory, shape = TWINS[name]
        cal = twin_data(name, CAL_SAMPLES, 0)
    else:
        factory, shape = MODELS[name]
        cal = synthetic_data(name, CAL_SAMPLES, 0)
    qg = pipeline.quantized_graph(pipeline.float_graph(factory(), [shape]), [cal],
                                  precision=PrecisionRequest("int8"))
    profile = load_profile(profile_name)
    g = c_target.prepare(qg, profile, {})
    arts = c_target.emit(g, work / name, profile, {"name": name})
    return c_target.memory(g, arts, profile, {"build_dir": str(work / name / "build")})


def symbols(obj: Path) -> list[tuple[int, str, str]]:
    """(bytes, nm type, name) of the code and constant symbols of an object."""
    out = subprocess.run(["arm-none-eabi-nm", "--size-sort", "-S", str(obj)], capture_output=True,
                         text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTdDrR":
            rows.append((int(fields[1], 16), fields[2], fields[3]))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join([*TWINS, *MODELS]), help="comma-separated model names")
    ap.add_argument("--profile", default="cortex-m4", help="a cross profile (cortex-m3, cortex-m4, cortex-m7)")
    ap.add_argument("--symbols", action="store_true", help="also list each kernel object's symbols")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgeq_flash_") as tmp:
        for name in args.models.split(","):
            mem = model_memory(name, Path(tmp), args.profile)
            print(f"{name}: flash {mem['flash_bytes']:,} (weights {mem['weights_bytes']:,}, "
                  f"code {mem['code_bytes']:,})")
            objdir = Path(tmp) / name / "build" / f"{args.profile}-objects"
            for obj, size in mem["objects"].items():
                print(f"  {obj:40} {size['flash']:8,}")
                if args.symbols and obj.startswith("edgeq_"):
                    for nbytes, kind, sym in symbols(objdir / (Path(obj).stem + ".o")):
                        print(f"      {nbytes:6,} {kind} {sym}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
