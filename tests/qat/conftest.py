"""Helpers the QAT tests share: the reference interpreter on a QAT module's integer graph."""
import numpy as np
import torch

from edgeq import interpreter


def reference(qm, x):
    """The reference interpreter on the QAT module's current integer graph (dequantized outputs)."""
    g = qm.quantized_graph()
    q = interpreter.quantize_input(g, 0, x, qm.input_rounding)
    out = interpreter.run(g, [q])
    return g, [out[o] if g.t(o).quant is None else interpreter.dequantize(g, o, out[o]) for o in g.outputs]


def outputs(y):
    return [t.detach().numpy() for t in (y if isinstance(y, tuple) else (y,))]


def assert_exact(qm, x):
    """qm's outputs equal the reference's on its exported graph, bit for bit, at any batch size."""
    g, ref = reference(qm, x)
    mine = outputs(qm(torch.from_numpy(x)))
    for o, r, m in zip(g.outputs, ref, mine):
        np.testing.assert_array_equal(m, r.astype(m.dtype) if g.t(o).quant is None else r, err_msg=o)
    one = outputs(qm(torch.from_numpy(x[3:4])))          # any batch size: batch 1 gives the same
    for r, m in zip(ref, one):
        np.testing.assert_array_equal(m, r[3:4].astype(m.dtype))
