"""Index arithmetic of the strided kernels (transpose, slice, pad, mean, broadcasting ops):
row-major strides, broadcast strides, and merging dimensions so that the innermost loop is as
long as possible."""
from __future__ import annotations

from typing import Sequence


def row_major_strides(shape: Sequence[int]) -> list[int]:
    """Element strides of a row-major (C order) tensor of ``shape``."""
    out, acc = [0] * len(shape), 1
    for d in reversed(range(len(shape))):
        out[d] = acc
        acc *= int(shape[d])
    return out


def broadcast_strides(shape: Sequence[int], out_rank: int) -> list[int]:
    """Strides of an operand of ``shape`` read at every index of a rank-``out_rank`` output
    (numpy broadcasting: missing leading dimensions and size-1 dimensions have stride 0)."""
    shape = (1,) * (out_rank - len(shape)) + tuple(shape)
    return [0 if d == 1 else s for d, s in zip(shape, row_major_strides(shape))]


def collapse_dims(shape: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge dimensions of a strided loop nest without changing the addresses it visits.

    ``shape``: the iteration shape; ``strides``: one stride list per operand (element strides,
    0 for a broadcast).  Size-1 dimensions are dropped and dimension d is merged into d + 1
    when every operand has stride[d] == stride[d + 1] * shape[d + 1], so that the innermost
    dimension is as long as possible.  At least one dimension is kept."""
    dims = [(int(n), [int(s[d]) for s in strides]) for d, n in enumerate(shape) if int(n) != 1]
    merged: list[tuple[int, list[int]]] = []
    for n, st in dims:
        if merged and all(sp == si * n for sp, si in zip(merged[-1][1], st)):
            merged[-1] = (merged[-1][0] * n, st)
        else:
            merged.append((n, st))
    if not merged:
        merged = [(1, [0] * len(strides))]
    return [n for n, _ in merged], [[st[k] for _, st in merged] for k in range(len(strides))]


def padded(values: list[int], length: int, fill: int) -> list[int]:
    """``values`` followed by ``fill`` up to ``length`` entries (the kernels' fixed arrays)."""
    return list(values) + [fill] * (length - len(values))
