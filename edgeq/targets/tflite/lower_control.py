"""TFLite lowering of control flow: a ``scan`` (one recurrent layer) as WHILE.

Loop variables: the step counter t (int32 [1]), the states, the sequences (passed through) and
one accumulator per stacked state. The condition subgraph is t < steps; the body subgraph
GATHERs step t of each sequence, runs the step's operators, writes the stacked states at t with
DYNAMIC_UPDATE_SLICE and adds 1 to t. All integer kernels; the step's tensors keep the
quantization of the IR body, the same at every step."""
from __future__ import annotations

import numpy as np

from ...ir import Graph, Node
from .builder import BO, ModelBuilder
from .peephole import collapse_glue
from .registry import LOWERINGS, lowers
from .schema import fb


def _loop_var(sub: ModelBuilder, b: ModelBuilder, outer: int, name: str) -> int:
    """A subgraph input tensor shaped, typed and quantized like the outer tensor ``outer``."""
    shape, dtype, quant = b.info[outer]
    return sub.add_tensor(name, shape, dtype, quant)


def _filled_with_zero(b: ModelBuilder, name: str) -> int:
    """A tensor shaped like IR tensor ``name`` holding its real zero, made by FILL at run time
    (a stacked-state accumulator: a constant of the whole sequence would be a buffer of zeros).
    TFLite Micro's FILL has no int16 values: an int16 accumulator (zero point 0) is an int8 FILL
    of 0 at its scale, QUANTIZEd to int16 (0 to 0 exactly)."""
    t = b.g.t(name)
    dims = b.const(f"{name}_dims", np.asarray(t.shape, np.int32))
    wide = t.dtype == "int16"
    dtype = "int8" if wide else t.dtype
    value = b.const(f"{name}_zero_value", np.asarray(int(t.quant.zero_point[0]), dtype=dtype), t.quant)
    filled = b.add_tensor(f"{name}_initial{'_int8' if wide else ''}", t.shape, dtype, t.quant)
    # version 3: FILL of int8 values
    b.op(BO.FILL, [dims, value], [filled], fb.BuiltinOptions.FillOptions, fb.FillOptionsT(), version=3)
    if not wide:
        return filled
    out = b.add_tensor(f"{name}_initial", t.shape, t.dtype, t.quant)
    b.op(BO.QUANTIZE, [filled], [out], version=2)
    return out


@lowers("scan")
def _scan(b: ModelBuilder, node: Node) -> None:
    body, k, steps = node.attrs["body"], node.attrs["sequences"], int(node.attrs["steps"])
    n_states, stacked = len(body.outputs), list(node.attrs["stacked"])
    t0 = b.const(f"{node.name}_t0", np.array([0], np.int32))
    states = [b.tensor(n) for n in node.inputs[k:]]
    sequences = [b.tensor(n) for n in node.inputs[:k]]
    accumulators = [_filled_with_zero(b, node.outputs[n_states + stacked.index(i)]) for i in stacked]
    loop_in = [t0, *states, *sequences, *accumulators]

    cond = b.subgraph(Graph())
    cond_in = [_loop_var(cond, b, v, f"{node.name}_cond_{j}") for j, v in enumerate(loop_in)]
    more = cond.add_tensor(f"{node.name}_more", (1,), "bool")
    cond.op(BO.LESS, [cond_in[0], cond.const(f"{node.name}_steps", np.array([steps], np.int32))], [more], version=1)
    cond_index = b.add_subgraph(cond, cond_in, [more], f"{node.name}_cond")

    step = b.subgraph(body)
    t_in = _loop_var(step, b, t0, f"{node.name}_t")
    state_in = [step.tensor(n) for n in body.inputs[k:]]
    seq_in = [_loop_var(step, b, v, f"{node.name}_sequence_{j}") for j, v in enumerate(sequences)]
    acc_in = [_loop_var(step, b, v, f"{node.name}_stacked_{j}") for j, v in enumerate(accumulators)]
    for j, (seq, x_t) in enumerate(zip(seq_in, body.inputs[:k])):
        shape, dtype, quant = b.info[sequences[j]]
        gathered = step.add_tensor(f"{x_t}_gathered", (shape[0], 1, *shape[2:]), dtype, quant)
        opts = fb.GatherOptionsT()
        opts.axis, opts.batchDims = 1, 0
        step.op(BO.GATHER, [seq, t_in], [gathered], fb.BuiltinOptions.GatherOptions, opts, version=1)
        step.reshape(gathered, step.tensor(x_t), body.t(x_t).shape)
    for n in body.nodes:
        LOWERINGS[n.op](step, n)
    acc_out = []
    zero = step.const(f"{node.name}_zero", np.array([0], np.int32))
    for j, i in enumerate(stacked):
        new = step.tensor(body.outputs[i])
        shape, dtype, quant = step.info[new]
        row = step.add_tensor(f"{body.outputs[i]}_row", (shape[0], 1, *shape[1:]), dtype, quant)
        step.reshape(new, row, (shape[0], 1, *shape[1:]))
        start = step.add_tensor(f"{node.name}_start_{j}", (len(shape) + 1,), "int32")
        opts = fb.ConcatenationOptionsT()
        opts.axis = 0
        step.op(BO.CONCATENATION, [zero, t_in, *[zero] * (len(shape) - 1)], [start],
                fb.BuiltinOptions.ConcatenationOptions, opts, version=1)
        updated = step.like_index(acc_in[j], "updated")
        step.op(BO.DYNAMIC_UPDATE_SLICE, [acc_in[j], row, start], [updated], version=1)
        acc_out.append(updated)
    t_out = step.like_index(t_in, "next")
    step.op(BO.ADD, [t_in, step.const(f"{node.name}_one", np.array([1], np.int32))], [t_out],
            fb.BuiltinOptions.AddOptions, fb.AddOptionsT(), version=1)
    body_in = [t_in, *state_in, *seq_in, *acc_in]
    body_out = [t_out, *[step.tensor(o) for o in body.outputs], *seq_in, *acc_out]
    io = collapse_glue(step, body_in + body_out)
    body_index = b.add_subgraph(step, io[:len(body_in)], io[len(body_in):], f"{node.name}_body")

    loop_out = [b.like_index(t0, "final"), *[b.tensor(o) for o in node.outputs[:n_states]],
                *[b.like_index(v, "after") for v in sequences],
                *[b.tensor(o) for o in node.outputs[n_states:]]]
    opts = fb.WhileOptionsT()
    opts.condSubgraphIndex, opts.bodySubgraphIndex = cond_index, body_index
    b.op(BO.WHILE, loop_in, loop_out, fb.BuiltinOptions.WhileOptions, opts, version=1)
