"""Lowerings of the gathers: ``gather`` (slices of an activation at constant indices along one
axis: reflect / replicate padding, reorders) and ``embedding`` (rows of a constant int8 table at
int32 ids, an activation)."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ..layer import LayerCode
from .reduce import axis_rows
from .registry import kernel, lowers

GATHER = kernel("edgeq_gather_axis_s8", "edgeq_gather.c")


@lowers("gather", kernels=(GATHER,))
def _gather(layer: LayerCode) -> None:
    node = layer.node
    axis = int(layer.attrs["axis"]) % len(layer.input(0).shape)
    rows = axis_rows(layer, axis)
    depth = dict(rows)["depth"]
    idx_t = layer.input(1)
    if not idx_t.is_constant or idx_t.data is None:
        raise UnsupportedOpError(f"gather at {node.where()}: the C target gathers at constant indices only")
    indices = np.asarray(idx_t.data).astype(np.int64).reshape(-1)
    if indices.size == 0 or indices.min() < 0 or indices.max() >= depth:
        raise UnsupportedOpError(f"gather at {node.where()}: indices outside [0, {depth})")
    sym = layer.const_array("indices", "int32_t", indices, node.inputs[1], 16,
                            f"source index along axis {axis} of each of the {indices.size} output slices")
    layer.note(f"axis {axis}, {indices.size} indices")
    layer.call(GATHER, [*rows, ("count", int(indices.size)), ("indices", sym)],
               [layer.ptr(node.inputs[0]), layer.ptr(node.outputs[0])])


EMBEDDING = kernel("edgeq_embedding_s8", "edgeq_embedding.c")


@lowers("embedding", kernels=(EMBEDDING,), int32_inputs=True)
def _embedding(layer: LayerCode) -> None:
    node = layer.node
    table, ids = layer.input(0), layer.input(1)
    if not table.is_constant or ids.is_constant or ids.dtype != "int32":
        raise UnsupportedOpError(f"embedding at {node.where()}: the C target looks up int32 ids (an activation) "
                                 f"in a constant table")
    vocabulary, dim = (int(v) for v in table.shape)
    layer.note(f"{vocabulary} x {dim} table, int32 ids clamped to [0, {vocabulary - 1}]")
    layer.call(EMBEDDING, [("count", ids.size), ("vocabulary", vocabulary), ("dim", dim)],
               [layer.operand(0), layer.ptr(node.inputs[1]), layer.ptr(node.outputs[0])])
