"""What every target provides, and target profiles (``targets/<name>.toml``, data not code).

A target module (``edgeq/targets/<format>/__init__.py``) exposes:

* ``prepare(qgraph, profile, options) -> Graph``: target-specific graph form (e.g. NHWC via
  ``passes.to_nhwc``); the integer reference is run on this graph.
* ``emit(graph, out_dir, profile, options) -> list[Path]``: writes the artifacts (atomically).
* ``run(graph, artifacts, profile, int_inputs, float_inputs, options) -> list[RuntimeRun]``:
  runs each runtime on all samples; outputs are integers aligned with the reference outputs.
* ``input_rounding``: how the artifact turns float inputs into integers ("half_even" for ONNX
  QuantizeLinear, "half_away" for TFLite QUANTIZE); int8-input artifacts get our integers.
"""
from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeqError

PROFILE_DIR = Path(os.environ.get("EDGEQ_TARGETS_DIR", Path(__file__).resolve().parents[2] / "targets"))


@dataclass
class TargetProfile:
    name: str
    format: str                      # "onnx" | "tflite" | "c"
    description: str = ""
    quantizer: dict[str, Any] = field(default_factory=dict)   # options passed to quantize()
    ops: list[str] = field(default_factory=list)              # IR ops this target lowers
    budget: dict[str, int] = field(default_factory=dict)      # flash_bytes, ram_bytes
    raw: dict[str, Any] = field(default_factory=dict)         # the whole TOML, for target modules


@dataclass
class RuntimeRun:
    """One runtime's outputs on every sample, as integers comparable with the reference."""
    runtime: str                     # e.g. "onnxruntime 1.32.0 (ORT_ENABLE_ALL)"
    outputs: list[np.ndarray]        # one per graph output, same shape/dtype as the reference's
    must_be_exact: bool              # a mismatch fails the build
    extra: dict[str, Any] = field(default_factory=dict)


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def load_profile(name: str) -> TargetProfile:
    path = PROFILE_DIR / f"{name}.toml"
    if not path.is_file():
        raise EdgeqError(f"unknown target '{name}'; available targets: {', '.join(list_profiles())} "
                         f"(profiles live in {PROFILE_DIR})")
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    t = raw.get("target", {})
    return TargetProfile(name=name, format=t.get("format", name), description=t.get("description", ""),
                         quantizer=raw.get("quantizer", {}), ops=t.get("ops", []),
                         budget=raw.get("budget", {}), raw=raw)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it: never a half-written artifact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; artifacts are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
