"""Run the ONNX QDQ model in onnxruntime and express its outputs in the reference's LSBs."""
from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ...ir import Graph
from ...quant import quantize
from ..base import RuntimeRun, TargetProfile

LEVELS = {"ORT_DISABLE_ALL": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "ORT_ENABLE_ALL": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
#: samples per onnxruntime run: ORT_DISABLE_ALL holds float copies of the activations, so 100
#: samples at once added 90 MB to a face detector's build; 16 at a time are also faster (0.12 s
#: against 0.22 s for those 100)
BATCH = 16
SATURATION_NOTE = ("this CPU (x86 without VNNI) runs onnxruntime's fused int8 kernels with VPMADDUBSW, whose "
                   "16-bit sums of two uint8 x int8 products saturate (onnxruntime's quantization docs): values "
                   "where two large products meet come out many LSB off; ORT_DISABLE_ALL runs the QDQ model as "
                   "written, and CPUs with VNNI or ARM do not saturate")


@lru_cache(maxsize=1)
def fused_int8_saturates() -> bool:
    """Whether onnxruntime's fused u8s8 conv/matmul kernels saturate on this CPU: x86 without
    AVX-VNNI / AVX512-VNNI (read from /proc/cpuinfo; other systems: assumed not)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return bool(flags) and not {"avx512_vnni", "avx_vnni"} & set(flags)


def run(graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
        float_inputs: list[np.ndarray], options: dict) -> list[RuntimeRun]:
    model = next(p for p in artifacts if p.suffix == ".onnx")
    runs = []
    for label, level in LEVELS.items():
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        so.enable_cpu_mem_arena = False    # the batch's buffers are freed after the run, not kept
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        chunks: list[list[np.ndarray]] = [[] for _ in graph.outputs]
        n = float_inputs[0].shape[0]
        for s in range(0, n, BATCH):
            feed = {k: _feed(graph, k, x[s:s + BATCH]) for k, x in zip(names, float_inputs)}
            for i, y in enumerate(sess.run(None, feed)):
                chunks[i].append(y)
        outs = [_to_lsb(graph, name, np.concatenate(c)) for name, c in zip(graph.outputs, chunks)]
        extra = {"optimization_level": label}
        if label == "ORT_ENABLE_ALL" and fused_int8_saturates():
            extra["note"] = SATURATION_NOTE
        runs.append(RuntimeRun(f"onnxruntime {ort.__version__} ({label})", outs, must_be_exact=False, extra=extra))
    return runs


def _feed(graph: Graph, name: str, x: np.ndarray) -> np.ndarray:
    """A batch as the model's input takes it: float32, or int32 for an integer input (token ids)."""
    return np.ascontiguousarray(x, dtype=np.float32 if graph.t(name).quant is not None else np.int32)


def _to_lsb(graph: Graph, name: str, y: np.ndarray) -> np.ndarray:
    """Recover the integers behind DequantizeLinear's float output (exact: y = (q - zp) * s)."""
    if graph.t(name).quant is None:      # an index output (argmax): the model's int64 indices
        return y.astype(graph.t(name).dtype)
    return quantize(y.astype(np.float64), *graph.t(name).quant.scalar(), graph.t(name).dtype)
