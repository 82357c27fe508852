"""Collapse the glue lowerings write around operators, once a subgraph is complete.

Lowerings are written one IR node at a time, and each brings its own RESHAPEs and TRANSPOSEs
(4-D views for CONV_2D, unit dimensions dropped for TFLite Micro's rank limits, NCHW views
for BATCH_MATMUL), so neighbours often undo each other. On the finished operator list:

* a RESHAPE of a RESHAPE reads the first one's input;
* a TRANSPOSE of a TRANSPOSE is one TRANSPOSE (composed permutation);
* a TRANSPOSE that keeps the element order (it moves unit dimensions) is a RESHAPE;
* a RESHAPE or TRANSPOSE that changes nothing is dropped, its readers reading its input;
* operators nobody reads are dropped, then tensors nobody references.

Only RESHAPE / TRANSPOSE between tensors of equal type and quantization are touched, so the
integers computed do not change. Subgraph inputs and outputs are kept (``io``)."""
from __future__ import annotations

import numpy as np

from .builder import BO, ModelBuilder
from .schema import fb

GLUE = (BO.RESHAPE, BO.TRANSPOSE)


def collapse_glue(b: ModelBuilder, io: list[int]) -> list[int]:
    """Simplify ``b``'s operators in place; returns ``io`` (tensor indices) renumbered."""
    keep = set(io)
    changed = True
    while changed:
        changed = False
        producer = {int(o): op for op in b.operators for o in op.outputs}
        for op in list(b.operators):
            if _code(b, op) in GLUE:
                changed |= _merge_with_producer(b, op, producer) or _as_reshape(b, op) or _drop_noop(b, op, keep)
        changed |= _drop_unread(b, keep)
    return _compact(b, io)


def _code(b: ModelBuilder, op: fb.OperatorT) -> int:
    return int(b.opcodes[op.opcodeIndex].builtinCode)


def _const(b: ModelBuilder, index: int) -> np.ndarray:
    data = b.buffers[b.tensors[index].buffer].data
    return np.frombuffer(np.asarray(data, dtype=np.uint8).tobytes(), dtype="<i4")


def _same_kind(b: ModelBuilder, x: int, y: int) -> bool:
    """Equal element type and quantization: data can move from one to the other unchanged."""
    tx, ty = b.tensors[x], b.tensors[y]
    if tx.type != ty.type or (tx.quantization is None) != (ty.quantization is None):
        return False
    if tx.quantization is None:
        return True
    qx, qy = tx.quantization, ty.quantization
    return (np.array_equal(qx.scale, qy.scale) and np.array_equal(qx.zeroPoint, qy.zeroPoint)
            and qx.quantizedDimension == qy.quantizedDimension)


def _merge_with_producer(b: ModelBuilder, op: fb.OperatorT, producer: dict) -> bool:
    src = int(op.inputs[0])
    first = producer.get(src)
    if first is None or _code(b, first) != _code(b, op) or not _same_kind(b, int(first.inputs[0]), src):
        return False
    if _code(b, op) == BO.TRANSPOSE:
        composed = _const(b, int(first.inputs[1]))[_const(b, int(op.inputs[1]))]
        op.inputs[1] = b.const(f"{_name(b, int(op.outputs[0]))}_perm", composed.astype(np.int32))
    op.inputs[0] = first.inputs[0]
    return True


def _name(b: ModelBuilder, index: int) -> str:
    name = b.tensors[index].name
    return name.decode() if isinstance(name, bytes) else str(name)


def _shape(b: ModelBuilder, index: int) -> tuple[int, ...]:
    return tuple(int(d) for d in b.tensors[index].shape)


def _keeps_order(shape: tuple[int, ...], perm: np.ndarray) -> bool:
    moved = [int(p) for p in perm if shape[int(p)] != 1]
    return moved == sorted(moved)


def _as_reshape(b: ModelBuilder, op: fb.OperatorT) -> bool:
    if _code(b, op) != BO.TRANSPOSE or not _same_kind(b, int(op.inputs[0]), int(op.outputs[0])):
        return False
    src, dst = int(op.inputs[0]), int(op.outputs[0])
    if not _keeps_order(_shape(b, src), _const(b, int(op.inputs[1]))):
        return False
    shape = _shape(b, dst)
    replacement_at = b.operators.index(op)
    b.reshape(src, dst, shape)                 # appended last: move it to the transpose's place
    b.operators[replacement_at] = b.operators.pop()
    return True


def _drop_noop(b: ModelBuilder, op: fb.OperatorT, keep: set[int]) -> bool:
    src, dst = int(op.inputs[0]), int(op.outputs[0])
    if dst in keep or _shape(b, src) != _shape(b, dst) \
            or not _same_kind(b, src, dst):
        return False
    if _code(b, op) == BO.TRANSPOSE and not _keeps_order(_shape(b, src), _const(b, int(op.inputs[1]))):
        return False
    b.operators.remove(op)
    for other in b.operators:
        other.inputs = np.where(other.inputs == dst, src, other.inputs).astype(np.int32)
    return True


def _drop_unread(b: ModelBuilder, keep: set[int]) -> bool:
    read = set(keep)
    for op in b.operators:
        read.update(int(i) for i in op.inputs if i >= 0)
    live = [op for op in b.operators if any(int(o) in read for o in op.outputs)]
    dropped = len(live) != len(b.operators)
    b.operators[:] = live
    return dropped


def _compact(b: ModelBuilder, io: list[int]) -> list[int]:
    used = set(io)
    for op in b.operators:
        used.update(int(i) for i in op.inputs if i >= 0)
        used.update(int(o) for o in op.outputs)
    order = sorted(used)
    new = {old: k for k, old in enumerate(order)}
    b.tensors[:] = [b.tensors[i] for i in order]
    b.info[:] = [b.info[i] for i in order]
    b.index = {name: new[i] for name, i in b.index.items() if i in new}
    remap = np.vectorize(lambda i: new.get(int(i), -1) if i >= 0 else -1, otypes=[np.int32])
    for op in b.operators:
        op.inputs = remap(op.inputs) if len(op.inputs) else op.inputs
        op.outputs = remap(op.outputs) if len(op.outputs) else op.outputs
    return [new[i] for i in io]


def compact_buffers(model: fb.ModelT) -> None:
    """Drop the buffers no tensor (and no metadata) references any more; buffer 0, the empty
    sentinel, stays first."""
    used = {0} | {int(t.buffer) for sg in model.subgraphs for t in sg.tensors} | {int(m.buffer) for m in model.metadata or []}
    order = sorted(used)
    new = {old: k for k, old in enumerate(order)}
    model.buffers = [model.buffers[i] for i in order]
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.buffer = new[int(t.buffer)]
    for m in model.metadata or []:
        m.buffer = new[int(m.buffer)]
