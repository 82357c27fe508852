"""ONNX QDQ target: float32 in/out, NCHW, QuantizeLinear/DequantizeLinear carrying exactly the
IR's scales and zero points; validated in onnxruntime at two optimisation levels (which
requantizes in float32, so no run must be bit-exact: differences are counted in LSBs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...ir import Graph
from ..base import TargetProfile
from .lower import LOWERINGS, emit, prepare
from .validate import run

input_rounding = "half_even"   # ONNX QuantizeLinear rounds half to even


def memory(graph: Graph, artifacts: list[Path], profile: TargetProfile, options: dict) -> dict:
    """ONNX Runtime plans its own memory: nothing to report."""
    return {}


def first_mismatch(graph: Graph, artifacts: list[Path], profile: TargetProfile, sample: list[np.ndarray],
                   ref_values: dict[str, np.ndarray], options: dict) -> str:
    """No ONNX run must be bit-exact (ORT requantizes in float32), so there is nothing to locate."""
    return ""


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def refusals() -> dict[str, str]:
    return {}


__all__ = ["emit", "prepare", "run", "input_rounding", "memory", "first_mismatch", "supported_ops", "refusals"]
