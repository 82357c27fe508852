"""Helpers of the C target tests: quantize a model once, quantize eval data, compare outputs."""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeq import interpreter, pipeline
from edgeq.ir import Graph
from edgeq.targets import load_profile
from edgeq.targets import c as c_target
from examples.models import MODELS, synthetic_data

CAL_SAMPLES = 64
HOST_SAMPLES = 64
QEMU_SAMPLES = 24


@dataclass
class Prepared:
    name: str
    graph: Graph                      # quantized, NHWC (what the C code computes)
    inputs: list[np.ndarray]          # int8, NHWC, HOST_SAMPLES samples
    reference: list[np.ndarray]       # integer reference outputs, one per graph output


def to_graph_layout(graph: Graph, index: int, x: np.ndarray) -> np.ndarray:
    """Float data in torch layout -> the prepared graph's input layout (NHWC for 4-D)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 and graph.layout == "nhwc" else x


def prepare_model(name: str, model: torch.nn.Module, shapes: list[tuple[int, ...]],
                  calibration: list[np.ndarray], evaluation: list[np.ndarray],
                  quantizer: dict | None = None, method: str = "mse") -> Prepared:
    """``quantizer``: a profile's [quantizer] options (default: the quantizer's defaults);
    ``method``: the calibration method."""
    fg = pipeline.float_graph(model, shapes)
    qg = pipeline.quantized_graph(fg, calibration, method=method, options=quantizer)
    profile = load_profile("host-c")
    g = c_target.prepare(qg, profile, {})
    ints = [interpreter.quantize_input(g, i, to_graph_layout(g, i, x), c_target.input_rounding)
            for i, x in enumerate(evaluation)]
    ref = interpreter.run(g, ints)
    return Prepared(name, g, ints, [ref[o] for o in g.outputs])


@functools.lru_cache(maxsize=None)
def example(name: str) -> Prepared:
    factory, shape = MODELS[name]
    return prepare_model(name, factory(), [shape], [synthetic_data(name, CAL_SAMPLES, 0)],
                         [synthetic_data(name, HOST_SAMPLES, 1)])


def assert_bit_exact(p: Prepared, outputs: list[np.ndarray], n: int | None = None, where: str = "") -> None:
    assert len(outputs) == len(p.reference)
    for i, (got, want) in enumerate(zip(outputs, p.reference)):
        want = want[: n if n is not None else len(want)]
        # int8, or int32 for argmax indices
        assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
        bad = np.argwhere(got != want)
        assert bad.size == 0, (f"{p.name} output {i} {where}: {len(bad)} of {want.size} values differ, "
                               f"first at {bad[0].tolist()}: got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")


def require_cross_tools() -> None:
    from edgeq.targets.c import qemu
    missing = qemu.missing_tools(qemu.normalize_profile(load_profile("cortex-m4").raw))
    if missing:
        msg = ("Cortex-M4 toolchain / QEMU not on PATH (missing: " + ", ".join(missing) + ")")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def require_host_cc() -> None:
    if shutil.which("gcc") is None:
        pytest.fail("host gcc not found")


def emit(p: Prepared, out_dir: Path, name: str | None = None) -> list[Path]:
    return c_target.emit(p.graph, out_dir, load_profile("host-c"), {"name": name or p.name})
