"""Before and after: latency and size of the float model and of the int8 artifact on this host.

Latency is one batch-1 inference, timed ``invoke`` alone (inputs set beforehand), one thread
everywhere, median over repeated runs with the 10th and 90th percentiles as the spread. The
runs stop after a small time budget (at least ``MIN_RUNS``). Runtimes:

* float: the model in torch (eager, as the user holds it); for the onnx target also the float
  model exported to ONNX (torch's TorchScript exporter) in onnxruntime, so that float and int8
  meet in the same runtime;
* int8: the artifact in the runtime that runs it on this host: onnxruntime (all
  optimisations) for ``onnx``, LiteRT with its default kernels (XNNPACK) for ``tflite``.

MCU targets have no host latency: their QEMU instruction counts stand for speed."""
from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

MIN_RUNS = 5
MAX_RUNS = 200
BUDGET_S = 0.05
WARMUP = 2


def timed(fn: Callable[[], Any], budget_s: float = BUDGET_S) -> dict[str, float | int]:
    """Median, p10 and p90 in milliseconds of ``fn()`` over repeated runs."""
    for _ in range(WARMUP):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < MAX_RUNS and (len(times) < MIN_RUNS or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    a = np.array(times)
    return {"median_ms": round(float(np.median(a)), 4), "p10_ms": round(float(np.percentile(a, 10)), 4),
            "p90_ms": round(float(np.percentile(a, 90)), 4), "runs": len(times)}


def _entry(model: str, runtime: str, stats: dict) -> dict:
    return {"model": model, "runtime": runtime, "threads": 1, "batch": 1, **stats}


def measure(model: torch.nn.Module | torch.export.ExportedProgram, target_format: str, artifacts: list[Path],
            float_sample: list[np.ndarray], artifact_inputs: Callable[[], list[np.ndarray]]) -> list[dict]:
    """Latency entries for the float model and the artifact (one sample each;
    ``artifact_inputs()`` gives what the tflite artifact's inputs take)."""
    module = model.module() if isinstance(model, torch.export.ExportedProgram) else model
    xs = [torch.from_numpy(np.array(x[:1])) for x in float_sample]
    entries = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            entries.append(_entry("float", f"torch {torch.__version__.split('+')[0]} (eager)", timed(lambda: module(*xs))))
        if target_format == "onnx":
            onnx_float = _float_onnx(module, xs)
            if onnx_float is not None:
                entries.append(_entry("float", _ort_label(), _ort_timing(onnx_float, [x.numpy() for x in xs])))
    finally:
        torch.set_num_threads(threads)
    if target_format == "onnx":
        model_path = next(p for p in artifacts if p.suffix == ".onnx")
        entries.append(_entry("int8", _ort_label(), _ort_timing(str(model_path), [np.array(x[:1]) for x in float_sample])))
    elif target_format == "tflite":
        entries.append(_litert_entry(next(p for p in artifacts if p.suffix == ".tflite"), artifact_inputs()))
    return entries


def _ort_label() -> str:
    import onnxruntime as ort
    return f"onnxruntime {ort.__version__} (ORT_ENABLE_ALL)"


#: ONNX Runtime's input type names -> numpy (token ids enter as integers)
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def _ort_timing(model: str | bytes, inputs: list[np.ndarray]) -> dict:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feed = {i.name: np.ascontiguousarray(x, dtype=_ORT_TYPES.get(i.type, np.float32))
            for i, x in zip(sess.get_inputs(), inputs)}
    return timed(lambda: sess.run(None, feed))


def _float_onnx(module: torch.nn.Module, xs: list[torch.Tensor]) -> bytes | None:
    """The float model as ONNX (TorchScript exporter); None when it cannot export the model."""
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(xs), buf, dynamo=False, opset_version=17,
                              training=torch.onnx.TrainingMode.PRESERVE)
    except Exception:   # noqa: BLE001 - the baseline is optional; the torch figure stays
        return None
    return buf.getvalue()


def _litert_entry(path: Path, inputs: list[np.ndarray]) -> dict:
    from .targets.tflite.runtimes import litert_interpreter, litert_label
    interp = litert_interpreter(path.read_bytes(), reference=False)
    for d, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(d["index"], np.ascontiguousarray(x[:1], dtype=d["dtype"]))
    return _entry("int8", litert_label(False), timed(interp.invoke))


def sizes(float_bytes: int, artifact_bytes: int, memory: dict) -> dict:
    """Float weights (float32 bytes of every parameter and buffer) against the artifact: the
    artifact files, or for C targets the flash the compiled model needs when it is known."""
    after = int(memory.get("flash_bytes") or artifact_bytes)
    ratio = round(float_bytes / after, 2) if after else None
    return {"float_bytes": int(float_bytes), "artifact_bytes": after, "ratio": ratio,
            "comparison": _comparison(ratio),
            "artifact_measure": "flash_bytes" if memory.get("flash_bytes") else "file bytes"}


def _comparison(ratio: float | None) -> str:
    """"3.5x smaller", or for an artifact bigger than its float weights (a tiny model's format
    overhead) "1.11x larger"."""
    if not ratio:
        return "size not compared"
    if ratio >= 1.0:
        return f"{ratio:.1f}x smaller"
    return f"{1.0 / ratio:.2f}x larger"


def float_weight_bytes(model: torch.nn.Module | torch.export.ExportedProgram) -> int:
    """Bytes of the float model's parameters, buffers and tensor constants in their dtypes."""
    state = model.state_dict() if isinstance(model, torch.nn.Module) else \
        {**model.state_dict, **{k: v for k, v in model.constants.items() if isinstance(v, torch.Tensor)}}
    return int(sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor)))
