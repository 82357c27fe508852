"""How close a quantized graph is to its float graph, measured with the integer reference."""
from __future__ import annotations

import numpy as np

from . import interpreter, metrics
from .ir import Graph


def output_sqnr(fgraph: Graph, reference: dict[str, np.ndarray], qgraph: Graph, sample: list[np.ndarray]) -> float:
    """Mean over outputs of the integer reference's SQNR against float on ``sample`` (dB);
    ``reference``: the float graph's outputs on ``sample``."""
    return float(np.mean(output_sqnrs(fgraph, reference, qgraph, sample)))


def output_sqnrs(fgraph: Graph, reference: dict[str, np.ndarray], qgraph: Graph,
                 sample: list[np.ndarray]) -> list[float]:
    """Each output's SQNR (dB, at most 200) of the integer reference against float on ``sample``."""
    return cross_fitted_sqnrs(fgraph, reference, [(slice(None), qgraph)], sample)


def cross_fitted_sqnrs(fgraph: Graph, reference: dict[str, np.ndarray], parts: list[tuple[slice, Graph]],
                       sample: list[np.ndarray]) -> list[float]:
    """Each output's SQNR (dB, at most 200) over ``sample``, each part's rows run by that part's
    quantized graph (a cross-fitted variant: each fold by the graph fitted without it; one part
    of all rows: ``output_sqnrs``)."""
    sums: list[metrics.SqnrSum] = [metrics.SqnrSum() for _ in fgraph.outputs]
    for rows, qgraph in parts:
        qin = [interpreter.quantize_input(qgraph, i, x[rows]) for i, x in enumerate(sample)]
        out = interpreter.run_int_chunked(qgraph, qin)
        for total, f, o in zip(sums, fgraph.outputs, qgraph.outputs):
            total.add(reference[f][rows], interpreter.dequantize(qgraph, o, out[o]))
    return [min(float(total.db()), 200.0) for total in sums]


def worst_then_mean(sqnrs: list[float]) -> tuple[float, float]:
    """How quantization candidates are ranked: by their worst output's SQNR, then the mean.
    A multi-output model's outputs are separate results (a detector's class, box and landmark
    heads): a mean would let one head's gain buy another head's loss. One output: its SQNR."""
    return float(np.min(sqnrs)), float(np.mean(sqnrs))
