"""Run an edgeq graph with numpy: the float reference (float graph) or the integer reference
(quantized graph, int8/int32 only). The integer reference is the ground truth for every target."""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from . import quant
from .errors import EdgeqError
from .ir import Graph
from .ops import get_op


def run(graph: Graph, inputs: list[np.ndarray], keep: bool | set[str] = False,
        on_tensor: Callable[[str, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """Execute ``graph`` on a batch (dimension 0 of each input is the batch).

    Returns the graph outputs, plus every intermediate when ``keep`` is True (or the named
    ones when it is a set). ``on_tensor`` sees each activation as it is produced."""
    if len(inputs) != len(graph.inputs):
        raise EdgeqError(f"graph has {len(graph.inputs)} inputs, got {len(inputs)} arrays")
    values: dict[str, np.ndarray] = {}
    for name, x in zip(graph.inputs, inputs):
        integer = graph.quantized or graph.t(name).dtype != "float32"    # token ids are integers
        if not np.issubdtype(x.dtype, np.integer if integer else np.floating):
            raise EdgeqError(f"input '{name}' must be {'int' if integer else 'float'} data, got {x.dtype}")
        values[name] = x
        if on_tensor:
            on_tensor(name, x)
    refcount = graph.use_counts()
    for node in graph.nodes:
        op = get_op(node.op)
        args = [values[n] if n in values else graph.t(n).data for n in node.inputs]
        outs = op.run(node, graph, args, on_tensor)
        for name, value in zip(node.outputs, outs):
            values[name] = value
            if on_tensor:
                on_tensor(name, value)
        if keep is not True:
            for n in node.inputs:
                refcount[n] = refcount.get(n, 1) - 1
                if refcount[n] <= 0 and n not in graph.outputs and not (isinstance(keep, set) and n in keep):
                    values.pop(n, None)
    if keep is True:
        return values
    extra = keep if isinstance(keep, set) else set()
    return {k: v for k, v in values.items() if k in graph.outputs or k in extra}


def run_batched(graph: Graph, inputs: list[np.ndarray], batch_size: int = 64,
                progress: Callable[[int], None] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Yield ``run`` results for consecutive slices of the inputs (memory stays bounded)."""
    n = inputs[0].shape[0]
    for start in range(0, n, batch_size):
        chunk = [x[start:start + batch_size] for x in inputs]
        yield run(graph, chunk)
        if progress:
            progress(len(chunk[0]))


#: samples per run of the integer reference where a caller wants one result for a set
INT_CHUNK = 16


def run_int_chunked(graph: Graph, inputs: list[np.ndarray], keep: bool | set[str] = False,
                    rows: int = INT_CHUNK) -> dict[str, np.ndarray]:
    """``run`` of a quantized graph on ``rows`` samples at a time, the tensors concatenated
    along the batch: the same integers as one run (every integer kernel treats the samples of
    a batch independently and exactly), with the kernels' int64 temporaries a fraction of the
    size. (A float graph's sums may round differently at another batch size: run it whole.)"""
    n = inputs[0].shape[0]
    if n <= rows:
        return run(graph, inputs, keep)
    parts = [run(graph, [x[s:s + rows] for x in inputs], keep) for s in range(0, n, rows)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def quantize_input(graph: Graph, index: int, x: np.ndarray, rounding: str = "half_even") -> np.ndarray:
    """Float data -> the quantized graph's input integers, as the artifact's own boundary does it:
    float32 division by the scale, then ONNX QuantizeLinear's round half to even ("half_even")
    or TFLite QUANTIZE's round half away from zero ("half_away")."""
    t = graph.t(graph.inputs[index])
    if t.quant is None:        # an integer input (token ids): the values themselves
        return np.asarray(x).astype(t.dtype)
    scale, zp = t.quant.scalar()
    return quant.quantize(x.astype(np.float32), scale, zp, t.dtype, rounding)


def dequantize(graph: Graph, name: str, q: np.ndarray) -> np.ndarray:
    t = graph.t(name)
    if t.quant is None:      # an index output (argmax): the integers are the values
        return q.astype(np.float32)
    return quant.dequantize(q, *t.quant.scalar())
