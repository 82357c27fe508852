"""The interpreters a .tflite artifact is validated in: TFLite Micro (Python wrapper of the
reference kernels), LiteRT with its reference op resolver, LiteRT with its default (optimised /
XNNPACK) kernels. All run one sample at a time (TFLite Micro cannot resize; the model is
specialised to batch 1)."""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import tempfile
from importlib import metadata
from typing import Iterator

import numpy as np

from ...errors import EdgeqError
from .schema import read_model

ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")
DEFAULT_ARENA = 8 << 20


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


def tflm_label() -> str:
    return f"tflite-micro {_version('tflite-micro')}"


def litert_label(reference: bool) -> str:
    kind = "BUILTIN_REF" if reference else "default kernels, XNNPACK"
    return f"LiteRT {_version('ai-edge-litert')} ({kind})"


# --- TFLite Micro ---------------------------------------------------------------------

def arena_size_for(model_bytes: bytes, activation_bytes: int) -> int:
    """A comfortably large arena (the measured figure is reported, not this one)."""
    return max(DEFAULT_ARENA, 4 * activation_bytes + 2 * len(model_bytes) + (1 << 20))


def tflm_interpreter(model_bytes: bytes, arena_size: int, preserve_all: bool = False):  # noqa: ANN201
    from tflite_micro.python.tflite_micro import runtime
    cfg = runtime.InterpreterConfig.kPreserveAllTensors if preserve_all else \
        runtime.InterpreterConfig.kAllocationRecording
    try:
        with capture_c_output() as out:
            interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size, intrepreter_config=cfg)
    except Exception as e:  # noqa: BLE001 - surface TFLM's own log lines
        raise EdgeqError(f"TFLite Micro could not load the model: {e}; log: {out.text.strip()[-2000:]}") from e
    return interp


def tflm_arena_bytes(interp) -> int:  # noqa: ANN001
    with capture_c_output() as out:
        interp.print_allocations()
    m = ARENA_RE.search(out.text)
    if not m:
        raise EdgeqError(f"could not read the TFLite Micro arena size from print_allocations(): {out.text!r}")
    return int(m.group(1))


def run_tflm(model_bytes: bytes, inputs: list[np.ndarray], arena_size: int) -> tuple[list[np.ndarray], int]:
    """Outputs (stacked over samples) and the arena bytes TFLite Micro used."""
    n_out = len(read_model(model_bytes).subgraphs[0].outputs)
    interp = tflm_interpreter(model_bytes, arena_size)
    chunks: list[list[np.ndarray]] = [[] for _ in range(n_out)]
    s = 0
    try:
        with capture_c_output() as log:
            for s in range(inputs[0].shape[0]):
                for i, x in enumerate(inputs):
                    interp.set_input(np.ascontiguousarray(x[s:s + 1]), i)
                interp.invoke()
                for k in range(n_out):
                    chunks[k].append(np.array(interp.get_output(k), copy=True))
    except Exception as e:  # noqa: BLE001
        raise EdgeqError(f"TFLite Micro failed on sample {s}: {e}; log: {log.text.strip()[-2000:]}") from e
    arena = tflm_arena_bytes(interp)
    return [np.concatenate(c) for c in chunks], arena


# --- LiteRT ---------------------------------------------------------------------------

def litert_interpreter(model_bytes: bytes, reference: bool, preserve_all: bool = False):  # noqa: ANN201
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kind = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
    try:
        with capture_c_output() as out:
            interp = Interpreter(model_content=model_bytes, num_threads=1, experimental_op_resolver_type=kind,
                                 experimental_preserve_all_tensors=preserve_all)
            interp.allocate_tensors()
    except Exception as e:  # noqa: BLE001
        raise EdgeqError(f"{litert_label(reference)} could not load the model: {e}; "
                         f"log: {out.text.strip()[-2000:]}") from e
    return interp


def run_litert(model_bytes: bytes, inputs: list[np.ndarray], reference: bool) -> list[np.ndarray]:
    interp = litert_interpreter(model_bytes, reference)
    ins = [d["index"] for d in interp.get_input_details()]
    outs_d = [d["index"] for d in interp.get_output_details()]
    n = inputs[0].shape[0]
    chunks: list[list[np.ndarray]] = [[] for _ in outs_d]
    for s in range(n):
        for idx, x in zip(ins, inputs):
            interp.set_tensor(idx, np.ascontiguousarray(x[s:s + 1]))
        interp.invoke()
        for k, idx in enumerate(outs_d):
            chunks[k].append(np.array(interp.get_tensor(idx), copy=True))
    return [np.concatenate(c) for c in chunks]


# --- C-level output capture -------------------------------------------------------------

class _Captured:
    text = ""


@contextlib.contextmanager
def capture_c_output() -> Iterator[_Captured]:
    """Redirect the process's C-level stdout and stderr (file descriptors 1 and 2) to a
    temporary file for the duration; the text is in ``.text`` afterwards."""
    result = _Captured()
    libc = ctypes.CDLL(None)
    libc.fflush(None)
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as tmp:
        try:
            for fd in (1, 2):
                os.dup2(tmp.fileno(), fd)
            yield result
        finally:
            libc.fflush(None)
            for fd, keep in saved.items():
                os.dup2(keep, fd)
                os.close(keep)
            tmp.seek(0)
            result.text = tmp.read().decode("utf-8", errors="replace")
