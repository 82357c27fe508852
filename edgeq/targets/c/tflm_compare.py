"""The C arena beside TFLite Micro's for our own ``.tflite`` of the same model: the graph the C
code computes, lowered by the tflite target, loaded into TFLite Micro's Python interpreter
(recording allocator) and run once; its ``print_allocations()`` total is TFLite Micro's arena,
input and output tensors included (``head``: the tensors' memory plan and scratch; ``tail``:
persistent structures, per-channel quantization data among them)."""
from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...errors import EdgeqError
from ...ir import Graph
from ..base import load_profile

NOTE = ("TFLite Micro's arena for edgeq's own .tflite of this model (tflite_micro Python interpreter, "
        "recording allocator: a 64-bit host build; its input and output tensors are inside it)")


def tflm_arena(graph: Graph, options: dict) -> dict[str, Any]:
    """``tflm_arena_bytes`` (None when the model cannot be lowered or loaded, with the reason in
    ``tflm_arena_note``)."""
    from .. import tflite
    from ..tflite import runtimes
    try:
        profile = load_profile("tflite")
        tflite.check_supported(graph)
        data = tflite.model_bytes(graph, {**options, "io": "int8"}, profile)
        acts = int(sum(graph.t(n).size * np.dtype(graph.t(n).dtype).itemsize for n in graph.activations()))
        interp = runtimes.tflm_interpreter(data, runtimes.arena_size_for(data, acts))
        zeros = [np.zeros((1, *graph.t(n).shape[1:]), dtype=graph.t(n).dtype) for n in graph.inputs]
        for k, x in enumerate(tflite.model_inputs(graph, zeros, None, {"io": "int8"})):
            interp.set_input(x, k)
        with runtimes.capture_c_output():
            interp.invoke()
        with runtimes.capture_c_output() as log:
            interp.print_allocations()
        total = runtimes.tflm_arena_bytes(interp)
        parts = {k: re.search(rf"Arena allocation {k} (\d+) bytes", log.text) for k in ("head", "tail")}
        return {"tflm_arena_bytes": total, "tflm_arena_note": NOTE,
                **{f"tflm_arena_{k}_bytes": int(m.group(1)) for k, m in parts.items() if m is not None}}
    except (EdgeqError, ImportError, RuntimeError, ValueError) as e:
        return {"tflm_arena_bytes": None, "tflm_arena_note": f"not measured: {str(e).splitlines()[0][:300]}"}
