"""Read/write orders of the ops' kernels (``OpDef.traversal``), from which the memory planner
derives how far an op's output may overlap an input the op is consuming.

The contract a kernel of such an op keeps (every C kernel of the op, int8 and 16x8; its
header says so): it runs the ``Traversal``'s steps one after the other; step ``s`` reads bytes
of the input only in ``[read_lo[s], read_hi[s])`` and writes bytes of its output only in
``[write_lo[s], write_hi[s])`` (byte offsets from each tensor's start); a step's reads and
writes may interleave in any order (``reads_first``: the step has read everything before its
first write); no read belonging to a step happens after a write of a later step.  Blocking
several steps together (reading steps s and s + 1, then writing both) keeps the contract.

The two orders the current plain-loop kernels follow:

* ``window_traversal``: window ops (convolution, depthwise convolution, pooling) go through the
  output pixels in raster order (row by row, left to right); pixel (oy, ox) reads input rows
  ``oy * stride - pad_top + ky * dilation`` for the kernel rows inside the input, likewise
  columns, and writes its output channels.  The byte range given per pixel runs from its first
  valid row and column to its last valid row and column, every channel: a superset of its reads.
* ``row_traversal``: row-wise ops (fully connected) go through the rows of the input in order;
  row r reads input row r and writes output row r.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Graph, Node

_BIG = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Traversal:
    """Per step, the input bytes read and the output bytes written (see the module docstring).
    ``input``: which of the node's inputs (an index into ``node.inputs``) is described."""
    input: int
    read_lo: np.ndarray
    read_hi: np.ndarray
    write_lo: np.ndarray
    write_hi: np.ndarray
    reads_first: bool = False
    #: steps the kernels run as one block: a block's reads may follow the writes of any of its
    #: steps (a 2x2 matrix-product kernel rereads both pixels' inputs between their writes)
    block: int = 1

    def lead(self) -> int:
        """The least number of bytes the output's start must lie below the input's start so that
        no write reaches an input byte that this or a later step still reads: the largest, over
        steps that write, of the step's highest written byte (exclusive) minus the lowest input
        byte read from that step on.  Negative: the output may start that far above the input.
        When nothing is read after some write the answer is unbounded below: -2**40."""
        reads = self.read_hi > self.read_lo
        lo = np.where(reads, self.read_lo, _BIG).astype(np.int64)
        if self.reads_first:     # a step's own reads are over before it writes
            lo = np.append(lo[1:], _BIG)
        future = np.minimum.accumulate(lo[::-1])[::-1]
        if self.block > 1:       # step s may still be followed by reads of the block's earlier steps
            future = future[np.maximum(np.arange(future.size) - (self.block - 1), 0)]
        writes = (self.write_hi > self.write_lo) & (future < _BIG)
        need = self.write_hi.astype(np.int64)[writes] - future[writes]
        return int(need.max()) if need.size else -(1 << 40)


def _valid_range(start: np.ndarray, kernel: int, dilation: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last input index (inclusive) of the taps inside [0, size) of windows starting at
    ``start``; first > last where no tap is inside."""
    taps = start[:, None] + dilation * np.arange(kernel)[None, :]
    inside = (taps >= 0) & (taps < size)
    first = np.where(inside, taps, _BIG).min(axis=1)
    last = np.where(inside, taps, -1).max(axis=1)
    return first, last


def window_traversal(node: Node, graph: Graph, kernel: tuple[int, int], dilation: tuple[int, int],
                     block: int = 1) -> Traversal:
    """One step per output pixel in raster order (NHWC input 0 and output, batch 1); ``block``
    consecutive pixels computed together (``Traversal.block``)."""
    x, y = graph.t(node.inputs[0]), graph.t(node.outputs[0])
    _, h, w, c = x.shape
    _, oh, ow, oc = y.shape
    in_item, out_item = np.dtype(x.dtype).itemsize, np.dtype(y.dtype).itemsize
    sh, sw = node.attrs["stride"]
    pt, pl = node.attrs["padding"][0], node.attrs["padding"][1]
    r0, r1 = _valid_range(np.arange(oh) * sh - pt, kernel[0], dilation[0], h)
    c0, c1 = _valid_range(np.arange(ow) * sw - pl, kernel[1], dilation[1], w)
    empty = ((r1 < r0)[:, None] | (c1 < c0)[None, :]).reshape(-1)
    r0, r1 = np.where(r1 < r0, 0, r0), np.where(r1 < r0, 0, r1)
    c0, c1 = np.where(c1 < c0, 0, c0), np.where(c1 < c0, 0, c1)
    lo = ((r0[:, None] * w + c0[None, :]) * c * in_item).reshape(-1)
    hi = ((r1[:, None] * w + c1[None, :] + 1) * c * in_item).reshape(-1)
    hi = np.where(empty, lo, hi)
    pixels = np.arange(oh * ow, dtype=np.int64)
    return Traversal(0, lo.astype(np.int64), hi.astype(np.int64), pixels * oc * out_item,
                     (pixels + 1) * oc * out_item, block=block)


def row_traversal(node: Node, graph: Graph, in_features: int) -> Traversal:
    """One step per row of ``in_features`` input values (input 0), writing that row's outputs."""
    x, y = graph.t(node.inputs[0]), graph.t(node.outputs[0])
    rows = x.size // in_features
    in_row = in_features * np.dtype(x.dtype).itemsize
    out_row = (y.size // rows) * np.dtype(y.dtype).itemsize
    r = np.arange(rows, dtype=np.int64)
    return Traversal(0, r * in_row, (r + 1) * in_row, r * out_row, (r + 1) * out_row)
