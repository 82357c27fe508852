"""The model-independent steps of a build: trace, float passes, calibration, quantization."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .calibration import calibrate
from .frontend import trace
from .ir import Graph
from .passes import prepare_float_graph
from .quantize import quantize


def float_graph(model: torch.nn.Module | torch.export.ExportedProgram,
                input_shapes: list[tuple[int, ...]] | None = None) -> Graph:
    """Trace and run the float passes (NCHW, batch norm folded, activations fused)."""
    return prepare_float_graph(trace(model, input_shapes))


def quantized_graph(graph: Graph, calibration: list[np.ndarray], method: str = "mse",
                    options: dict | None = None, percentile: float = 99.99,
                    progress: Callable[[int], None] | None = None) -> Graph:
    """Calibrate the float graph on ``calibration`` and return the quantized (NCHW) graph."""
    ranges = calibrate(graph, calibration, method=method, percentile=percentile, progress=progress)
    return quantize(graph, ranges, options)
