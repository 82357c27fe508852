"""What every target provides (``Target``), and target profiles (``targets/<name>.toml``, data
not code). A target is a module ``edgeq/targets/<format>/__init__.py`` with every member of
``Target``; ``targets.target_module`` checks that it has them."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import EdgeqError
from ..files import atomic_write_bytes, atomic_write_text  # noqa: F401 - targets write through these
from ..ir import Graph

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


class Target(Protocol):
    """The interface of a target module."""

    #: how the artifact turns float inputs into integers ("half_even": ONNX QuantizeLinear,
    #: "half_away": TFLite QUANTIZE); artifacts with integer inputs get the reference's integers
    input_rounding: str

    def prepare(self, qgraph: Graph, profile: TargetProfile, options: dict) -> Graph:
        """The target's form of the quantized graph (e.g. NHWC); the reference runs on it."""

    def emit(self, graph: Graph, out_dir: Path, profile: TargetProfile, options: dict) -> list[Path]:
        """Write the artifacts (atomically); return their paths."""

    def run(self, graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
            float_inputs: list[np.ndarray], options: dict) -> list[RuntimeRun]:
        """Run every runtime on all samples; integer outputs aligned with the reference's."""

    def memory(self, graph: Graph, artifacts: list[Path], profile: TargetProfile, options: dict) -> dict:
        """Memory figures of the artifact (empty when the target has none to report); a model
        over the profile's budget raises EdgeqError naming both numbers."""

    def first_mismatch(self, graph: Graph, artifacts: list[Path], profile: TargetProfile,
                       sample: list[np.ndarray], ref_values: dict[str, np.ndarray], options: dict) -> str:
        """Where a runtime that must be bit-exact first differs from the reference on one
        sample ("" when the target cannot tell)."""

    def supported_ops(self) -> list[str]:
        """The IR ops the target lowers."""

    def refusals(self) -> dict[str, str]:
        """IR ops the target deliberately does not lower, with the reason."""


TARGET_MEMBERS = ("input_rounding", "prepare", "emit", "run", "memory", "first_mismatch", "supported_ops",
                  "refusals")


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
