"""collapse_glue: RESHAPE / TRANSPOSE glue collapsed after lowering, the function unchanged
(checked in TFLite Micro against numpy's reshapes and transposes of the same input)."""
import numpy as np

from edgeq.ir import Graph, QuantParams, Tensor
from edgeq.targets.tflite.builder import BO, ModelBuilder
from edgeq.targets.tflite.peephole import collapse_glue, compact_buffers
from edgeq.targets.tflite.schema import serialize
from tests.helpers import run_litert, run_tflm

Q = QuantParams(0.1, 3)


def _builder() -> tuple[ModelBuilder, int]:
    g = Graph(inputs=["x"], outputs=["y"], layout="nhwc", quantized=True)
    g.add_tensor(Tensor("x", (1, 2, 3, 4), "int8", quant=Q))
    b = ModelBuilder(g)
    return b, b.tensor("x")


def _transpose(b: ModelBuilder, src: int, perm: list[int], name: str) -> int:
    shape = tuple(b.info[src][0][p] for p in perm)
    dst = b.add_tensor(name, shape, "int8", Q)
    b.op(BO.TRANSPOSE, [src, b.const(f"{name}_perm", np.asarray(perm, np.int32))], [dst], version=2)
    return dst


def _reshape(b: ModelBuilder, src: int, shape: tuple[int, ...], name: str) -> int:
    dst = b.add_tensor(name, shape, "int8", Q)
    b.reshape(src, dst, shape)
    return dst


def _codes(b: ModelBuilder) -> list[int]:
    return [int(b.opcodes[o.opcodeIndex].builtinCode) for o in b.operators]


def _run(b: ModelBuilder, x_idx: int, y_idx: int, x: np.ndarray) -> np.ndarray:
    io = collapse_glue(b, [x_idx, y_idx])
    model = b.finish(io[:1], io[1:], "", {})
    compact_buffers(model)
    buf = serialize(model)
    got = run_tflm(buf, x)
    np.testing.assert_array_equal(run_litert(buf, x), got)
    return got


X = np.arange(24, dtype=np.int8).reshape(1, 2, 3, 4) - 12


def test_inverse_transposes_and_reshape_chains_collapse() -> None:
    b, x = _builder()
    t = _transpose(b, x, [0, 3, 1, 2], "t")
    back = _transpose(b, t, [0, 2, 3, 1], "back")
    r1 = _reshape(b, back, (1, 6, 4), "r1")
    y = _reshape(b, r1, (1, 24), "y")
    got = _run(b, x, y, X)
    assert _codes(b) == [BO.RESHAPE]
    np.testing.assert_array_equal(got, X.reshape(1, 24))


def test_composed_and_unit_dimension_transposes() -> None:
    b, x = _builder()
    t1 = _transpose(b, x, [0, 2, 1, 3], "t1")           # (1, 3, 2, 4)
    t2 = _transpose(b, t1, [0, 1, 3, 2], "t2")          # (1, 3, 4, 2): one transpose in all
    r = _reshape(b, t2, (1, 3, 1, 8), "r")
    y = _transpose(b, r, [0, 2, 1, 3], "y")             # moves a unit dimension: a reshape
    got = _run(b, x, y, X)
    assert sorted(_codes(b)) == sorted([BO.TRANSPOSE, BO.RESHAPE])
    np.testing.assert_array_equal(got, X.transpose(0, 2, 1, 3).transpose(0, 1, 3, 2).reshape(1, 1, 3, 8))
