"""edgeq.targets.c.strides: index arithmetic of the strided kernels."""
from __future__ import annotations

import numpy as np

from edgeq.targets.c.strides import broadcast_strides, collapse_dims, padded, row_major_strides


def test_collapse_dims_keeps_every_address() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape = [int(v) for v in rng.integers(1, 4, size=int(rng.integers(1, 6)))]
        strides = [[int(v) * int(rng.integers(0, 2)) for v in np.cumprod([1] + shape[::-1])[:-1][::-1]]
                   for _ in range(2)]
        new_shape, new_strides = collapse_dims(shape, strides)
        assert int(np.prod(new_shape)) == int(np.prod(shape))

        def addresses(sh: list[int], st: list[int]) -> list[int]:
            idx = np.indices(sh).reshape(len(sh), -1)
            return (np.asarray(st)[:, None] * idx).sum(axis=0).tolist()
        for old, new in zip(strides, new_strides):
            assert addresses(shape, old) == addresses(new_shape, new)


def test_row_major_and_broadcast_strides() -> None:
    assert row_major_strides([2, 3, 4]) == [12, 4, 1]
    assert row_major_strides([]) == []
    # (8, 1, 1) read at every index of a rank-4 output: no batch, one stride per channel
    assert broadcast_strides((8, 1, 1), 4) == [0, 1, 0, 0]
    assert broadcast_strides((1, 3, 6), 3) == [0, 6, 1]
    np.testing.assert_array_equal(np.broadcast_to(np.arange(8).reshape(8, 1, 1), (2, 8, 4, 5)).strides,
                                  [8 * s for s in broadcast_strides((8, 1, 1), 4)])


def test_padded_fills_to_the_kernel_array_length() -> None:
    assert padded([3, 4], 6, 1) == [3, 4, 1, 1, 1, 1]
    assert padded([], 2, 0) == [0, 0]
