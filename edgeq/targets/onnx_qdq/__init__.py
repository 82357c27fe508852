"""ONNX QDQ target: float32 in/out, NCHW, QuantizeLinear/DequantizeLinear carrying exactly the
IR's scales and zero points; validated in onnxruntime at two optimisation levels."""
from .lower import emit, prepare
from .validate import run

input_rounding = "half_even"   # ONNX QuantizeLinear rounds half to even


def memory(graph, artifacts, profile, options) -> dict:  # noqa: ANN001 - ONNX has no arena to plan
    return {}


__all__ = ["emit", "prepare", "run", "input_rounding", "memory"]
