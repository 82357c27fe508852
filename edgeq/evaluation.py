"""How close a quantized graph is to its float graph, measured with the integer reference."""
from __future__ import annotations

import numpy as np

from . import interpreter, metrics
from .ir import Graph


def output_sqnr(fgraph: Graph, reference: dict[str, np.ndarray], qgraph: Graph, sample: list[np.ndarray]) -> float:
    """Mean over outputs of the integer reference's SQNR against float on ``sample`` (dB);
    ``reference``: the float graph's outputs on ``sample``."""
    qin = [interpreter.quantize_input(qgraph, i, x) for i, x in enumerate(sample)]
    out = interpreter.run_int_chunked(qgraph, qin)
    vals = [metrics.sqnr_db(reference[f], interpreter.dequantize(qgraph, o, out[o]))
            for f, o in zip(fgraph.outputs, qgraph.outputs)]
    return float(np.mean(np.minimum(vals, 200.0)))
