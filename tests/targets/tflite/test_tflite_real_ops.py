"""The TFLite lowerings of the real-model ops under stress: one-node quantized graphs with
random scales and zero points (log-uniform over several decades), fed random integers over the
whole int8 / int16 range (saturation, zero denominators, out-of-table ids, inputs below
RSQRT's zero point), must give the integer reference's values exactly in TFLite Micro and in
LiteRT's reference kernels. Where TFLite cannot be exact (DIV shifting past 31 bits) the
target must refuse, naming the reason."""
from __future__ import annotations

import numpy as np
import pytest

from edgeq import interpreter
from edgeq.errors import UnsupportedOpError
from edgeq.ir import Graph, Node, QuantParams, Tensor
from edgeq.ops import get_op
from edgeq.quant import quantize
from edgeq.targets import load_profile, target_module
from edgeq.targets.tflite.schema import OP_NAMES, builtin_code, read_model

PROFILE = load_profile("tflite")
T = target_module(PROFILE)
SEEDS = range(6)
N = 6          # samples per graph


def _scale(rng: np.random.Generator, lo: float = -4, hi: float = 1) -> float:
    return float(np.float32(10 ** rng.uniform(lo, hi)))


def _zp(rng: np.random.Generator, dtype: str) -> int:
    return 0 if dtype == "int16" else int(rng.integers(-128, 128))


class OneOp:
    """A quantized graph of one ``op`` node: ``inputs`` are (shape, dtype, scale, zp) for
    activations or float arrays for constants; the output's parameters are given (or fixed by
    the op), then the op's quantize() derives its integer parameters, as edgeq.quantize does."""

    def __init__(self, op: str, inputs: list, attrs: dict | None = None, out: tuple[float, int] = (1.0, 0),
                 out_dtype: str = "int8") -> None:
        g = Graph()
        names = []
        for k, spec in enumerate(inputs):
            name = f"x{k}"
            if isinstance(spec, np.ndarray):
                g.add_tensor(Tensor(name, spec.shape, "float32", spec.astype(np.float32)))
            else:
                shape, dtype, s, zp = spec
                q = None if dtype == "int32" else QuantParams(s, zp)
                g.add_tensor(Tensor(name, shape, dtype, quant=q, int_type="int16" if dtype == "int16" else None))
                g.inputs.append(name)
            names.append(name)
        node = Node(op, names, ["y"], dict(attrs or {}), "node", "stress")
        opdef = get_op(op)
        opdef.check_attrs(node)
        g.add_tensor(Tensor("y", opdef.shape(node, g)[0], out_dtype, int_type="int16" if out_dtype == "int16" else None))
        g.nodes, g.outputs = [node], ["y"]
        if out_dtype == "int16" and opdef.fixed_output_quant_int16:
            s, zp = opdef.fixed_output_quant_int16
        elif opdef.fixed_output_quant:
            s, zp = opdef.fixed_output_quant
        elif opdef.same_quant_as_input:
            s, zp = g.t("x0").quant.scalar()
        else:
            s, zp = opdef.adjust_output_quant(node, g, *out)
        g.t("y").quant = QuantParams(s, zp)
        opdef.quantize(node, g, {})
        g.quantized = True
        self.qgraph = g

    def run(self, rng: np.random.Generator, tmp_path, low: dict | None = None) -> dict:
        """Random integers into the artifact; returns the op versions written."""
        graph = T.prepare(self.qgraph, PROFILE, {})
        arts = T.emit(graph, tmp_path, PROFILE, {})
        ints = []
        for name in graph.inputs:
            t = graph.t(name)
            lo, hi = (low or {}).get(name, np.iinfo(t.dtype).min), np.iinfo(t.dtype).max
            ints.append(rng.integers(lo, hi, (N, *t.shape[1:]), endpoint=True).astype(t.dtype))
        ref = interpreter.run(graph, ints)["y"]
        for run in T.run(graph, arts, PROFILE, ints, None, {})[:2]:
            assert run.must_be_exact
            diff = np.abs(run.outputs[0].astype(np.int64) - ref.astype(np.int64))
            assert diff.max() == 0, f"{run.runtime}: {(diff > 0).sum()} of {diff.size} values differ"
        model = read_model(arts[0].read_bytes())
        return {OP_NAMES[builtin_code(oc)]: oc.version for oc in model.operatorCodes}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_abs(seed, dtype, tmp_path):
    rng = np.random.default_rng(seed)
    same = seed == 0          # equal scales: TFLite's no-rescale branch
    s = _scale(rng)
    g = OneOp("abs", [((1, 3, 4, 5), dtype, s, _zp(rng, dtype))], out=(s if same else _scale(rng), _zp(rng, dtype)),
              out_dtype=dtype)
    assert g.run(rng, tmp_path) == {"ABS": 3 if dtype == "int16" else 2}


@pytest.mark.parametrize("seed", SEEDS)
def test_rsqrt_including_inputs_below_the_zero_point(seed, tmp_path):
    rng = np.random.default_rng(seed)
    zp = -128 if seed % 2 else int(rng.integers(-120, 60))
    g = OneOp("rsqrt", [((1, 64), "int8", _scale(rng), zp)], out=(_scale(rng, -3, 1), int(rng.integers(-128, 0))))
    versions = g.run(rng, tmp_path)
    assert versions == ({"RSQRT": 2} if zp == -128 else {"RSQRT": 2, "MAXIMUM": 2})


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", ["sqrt", "gelu"])
def test_table_ops_as_gather(seed, op, tmp_path):
    rng = np.random.default_rng(seed)
    g = OneOp(op, [((1, 4, 33), "int8", _scale(rng, -3, 0), _zp(rng, "int8"))], out=(_scale(rng, -3, 0), _zp(rng, "int8")))
    assert g.run(rng, tmp_path) == {"CAST": 3, "ADD": 1, "GATHER": 2}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("second", [(1, 6, 9), (1, 6, 1), (1, 1, 9)])
def test_squared_difference(seed, second, tmp_path):
    rng = np.random.default_rng(seed)
    s1, s2 = _scale(rng, -3, 0), _scale(rng, -3, 0)
    g = OneOp("squared_difference", [((1, 6, 9), "int8", s1, _zp(rng, "int8")), (second, "int8", s2, _zp(rng, "int8"))],
              out=(float(np.float32(max(s1, s2) ** 2 * 10 ** rng.uniform(0, 3))), _zp(rng, "int8")))
    assert g.run(rng, tmp_path) == {"SQUARED_DIFFERENCE": 2}


@pytest.mark.parametrize("seed", range(12))
def test_div_exact_or_refused(seed, tmp_path):
    """Random scales: exact (zero denominators included) where TFLite's shifts stay within 31
    bits, refused otherwise."""
    rng = np.random.default_rng(seed)
    s1, s2 = _scale(rng, -2, 1), _scale(rng, -2, 1)
    zp2 = -128 if seed % 3 else _zp(rng, "int8")
    g = OneOp("div", [((1, 5, 40), "int8", s1, _zp(rng, "int8")), ((1, 5, 40), "int8", s2, zp2)],
              out=(float(np.float32(s1 / s2 / 10 ** rng.uniform(0.5, 3))), _zp(rng, "int8")))
    if g.qgraph.nodes[0].attrs["max_right_shift"] > 31:
        with pytest.raises(UnsupportedOpError, match="shifts right by up to .* undefined"):
            g.run(rng, tmp_path)
        return
    assert g.run(rng, tmp_path) == {"CAST": 3, "EQUAL": 1, "SELECT_V2": 1, "DIV": 1}


def test_div_refusal_happens():
    """Calibrated-like scales where the quotient's range is as wide as the numerator's exceed
    TFLite's 31-bit shifts."""
    g = OneOp("div", [((1, 8), "int8", 0.05, 0), ((1, 8), "int8", 0.01, -128)], out=(0.5, 0))
    assert g.qgraph.nodes[0].attrs["max_right_shift"] > 31


@pytest.mark.parametrize("seed", SEEDS)
def test_cast_saturates(seed, tmp_path):
    rng = np.random.default_rng(seed)
    g = OneOp("cast", [((1, 16), "int32", None, None)])
    assert g.run(rng, tmp_path, low={"x0": -300}) == {"MAXIMUM": 1, "MINIMUM": 1, "CAST": 3}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shapes", [((1, 5, 7), (1, 7, 4)), ((1, 2, 5, 7), (1, 2, 7, 3)), ((1, 3, 4, 6), (1, 1, 6, 2))])
def test_batch_matmul(seed, dtype, shapes, tmp_path):
    rng = np.random.default_rng(seed)
    s1, s2 = _scale(rng, -3, 0), _scale(rng, -3, 0)
    k = shapes[0][-1]
    span = 255.0 if dtype == "int8" else 65535.0
    out = float(np.float32(s1 * s2 * span * np.sqrt(k) * 10 ** rng.uniform(0, 1.5)))
    g = OneOp("batch_matmul", [(shapes[0], dtype, s1, _zp(rng, dtype)), (shapes[1], dtype, s2, _zp(rng, dtype))],
              out=(out, _zp(rng, dtype)), out_dtype=dtype)
    versions = g.run(rng, tmp_path)
    assert versions["BATCH_MATMUL"] == (3 if dtype == "int16" else 2)
    # 4-D: NHWC <-> NCHW views by TRANSPOSE; one moving only unit dimensions is a RESHAPE
    moves = {"TRANSPOSE"} | ({"RESHAPE"} if any(s[1] == 1 for s in shapes) else set())
    assert set(versions) == ({"BATCH_MATMUL"} | moves if len(shapes[0]) == 4 else {"BATCH_MATMUL"})


@pytest.mark.parametrize("seed", SEEDS)
def test_gather_and_embedding_with_out_of_table_ids(seed, tmp_path):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 5, 7)
    g = OneOp("gather", [((1, 5, 3, 4), "int8", _scale(rng), _zp(rng, "int8")), idx], {"axis": 1})
    assert g.run(rng, tmp_path) == {"GATHER": 2}
    table = rng.normal(0.3, 1.0, (50, 8))
    e = OneOp("embedding", [table, ((1, 11), "int32", None, None)])
    assert e.run(rng, tmp_path, low={"x1": -20}) == {"MAXIMUM": 1, "MINIMUM": 1, "GATHER": 2}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape_axis", [((1, 4, 17), 2), ((1, 6, 3, 5), 1)])
def test_l2_normalize(seed, shape_axis, tmp_path):
    rng = np.random.default_rng(seed)
    shape, axis = shape_axis
    g = OneOp("l2_normalize", [(shape, "int8", _scale(rng), _zp(rng, "int8"))], {"axis": axis})
    versions = g.run(rng, tmp_path)
    assert versions["L2_NORMALIZATION"] == 2     # 4-D axis 1 is NHWC's last: no TRANSPOSE either way
    assert set(versions) == {"L2_NORMALIZATION"}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("op_axes", [("sum", [1]), ("sum", [1, 2, 3]), ("sum", [2]), ("mean", [2])])
def test_sum_and_mean(seed, dtype, op_axes, tmp_path):
    rng = np.random.default_rng(seed)
    op, axes = op_axes
    s = _scale(rng)
    g = OneOp(op, [((1, 3, 4, 5), dtype, s, _zp(rng, dtype))], {"axes": axes, "keepdim": seed % 2 == 0},
              out=(float(np.float32(s * 10 ** rng.uniform(-0.5, 1.5))), _zp(rng, dtype)), out_dtype=dtype)
    versions = g.run(rng, tmp_path)
    assert versions["MEAN"] == (3 if dtype == "int16" else 2) and "SUM" not in versions


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("mode_pads", [("reflect", [[0, 0], [0, 0], [1, 2], [3, 0]]), ("replicate", [[0, 0], [1, 0], [2, 3], [0, 1]]),
                                       ("replicate", [[0, 0], [0, 0], [1, 1], [0, 1]])])
def test_reflect_and_replicate_pad(seed, mode_pads, tmp_path):
    rng = np.random.default_rng(seed)
    mode, pads = mode_pads
    g = OneOp("pad", [((1, 3, 4, 5), "int8", _scale(rng), _zp(rng, "int8"))], {"pads": pads, "mode": mode})
    versions = g.run(rng, tmp_path)
    wide = max(max(p) for p in pads) > 1
    assert versions == ({"GATHER": 2} if mode == "replicate" and wide else {"MIRROR_PAD": 2})


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("second", [(1, 4, 6), (1, 4, 1), "constant"])
def test_mul_int16(seed, second, tmp_path):
    rng = np.random.default_rng(seed)
    s1 = _scale(rng, -5, -2)
    other = rng.normal(0, 2, (1, 1, 6)) if second == "constant" else (second, "int16", _scale(rng, -5, -2), 0)
    g = OneOp("mul", [((1, 4, 6), "int16", s1, 0), other], out=(_scale(rng, -5, -2), 0), out_dtype="int16")
    if second == "constant":
        assert g.qgraph.t("x1").dtype == "int16" and g.qgraph.t("x1").quant.zero_point[0] == 0
    assert g.run(rng, tmp_path) == {"MUL": 4}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("second", [(1, 4, 6), (1, 4, 1)])
def test_sub_int16_broadcasting(seed, second, tmp_path):
    rng = np.random.default_rng(seed)
    g = OneOp("sub", [((1, 4, 6), "int16", _scale(rng, -5, -2), 0), (second, "int16", _scale(rng, -5, -2), 0)],
              out=(_scale(rng, -5, -2), 0), out_dtype="int16")
    assert g.run(rng, tmp_path) == {"MUL": 4, "ADD": 3}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
def test_logistic_tanh_int16(seed, op, tmp_path):
    rng = np.random.default_rng(seed)
    scale = [2.0**-12, 2.0**-11][seed] if seed < 2 else _scale(rng, -5, -2)
    g = OneOp(op, [((1, 512), "int16", scale, 0)], out_dtype="int16")
    assert g.qgraph.t("y").quant.scalar() == (1.0 / 32768, 0)
    assert g.run(rng, tmp_path) == {"LOGISTIC" if op == "sigmoid" else "TANH": 3}


def test_every_int16_input_value_of_logistic_and_tanh(tmp_path):
    """All 65536 int16 inputs, at a power-of-two scale and a general one."""
    for op in ("sigmoid", "tanh"):
        for scale in (2.0**-12, 7.3e-4):
            g = OneOp(op, [((1, 65536), "int16", scale, 0)], out_dtype="int16")
            graph = T.prepare(g.qgraph, PROFILE, {})
            arts = T.emit(graph, tmp_path, PROFILE, {})
            x = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)
            ref = interpreter.run(graph, [x])["y"]
            for run in T.run(graph, arts, PROFILE, [x], None, {})[:2]:
                np.testing.assert_array_equal(run.outputs[0], ref, err_msg=f"{op} {scale} {run.runtime}")


def test_int8_constant_quantization_of_the_embedding_table():
    """The table is int8 per tensor over its own range (asymmetric) and the output has its
    parameters: a lookup copies bytes."""
    table = np.linspace(-0.5, 2.0, 40).reshape(10, 4)
    g = OneOp("embedding", [table, ((1, 3), "int32", None, None)]).qgraph
    t = g.t("x0")
    assert t.dtype == "int8" and t.quant.scalar() == g.t("y").quant.scalar()
    assert t.data.min() == -128 and t.data.max() == 127
    np.testing.assert_array_equal(t.data, quantize(table, *t.quant.scalar()))


# --- glue past TFLite Micro's limits (attention and unrolled RNNs make these) -----------------

@pytest.mark.parametrize("seed", range(3))
def test_transpose_slice_concat_past_tflm_limits(seed, tmp_path):
    """A 6-D TRANSPOSE with unit dimensions (MultiheadAttention's), a 5-D STRIDED_SLICE and a
    CONCATENATION of 23 inputs (a GRU's outputs) lower exactly."""
    rng = np.random.default_rng(seed)
    q = (_scale(rng), _zp(rng, "int8"))
    g = OneOp("transpose", [((1, 1, 5, 1, 3, 4), "int8", *q)], {"perm": [0, 4, 2, 3, 1, 5]})
    assert g.run(rng, tmp_path / "t") == {"RESHAPE": 1, "TRANSPOSE": 2}
    g = OneOp("slice", [((1, 3, 1, 6, 5), "int8", *q)], {"begin": [0, 1, 0, 0, 1], "end": [1, 3, 1, 6, 5],
                                                        "strides": [1, 1, 1, 2, 1]})
    assert g.run(rng, tmp_path / "s") == {"RESHAPE": 1, "STRIDED_SLICE": 2}
    g = OneOp("concat", [((1, 1, 4), "int8", *q)] * 23, {"axis": 1}, out=q)
    assert g.run(rng, tmp_path / "c") == {"CONCATENATION": 2}
    model = read_model(T.model_bytes(T.prepare(g.qgraph, PROFILE, {}), {}))
    sizes = [len(o.inputs) for o in model.subgraphs[0].operators]
    assert max(sizes) <= 10 and len(sizes) == 4


def test_int8_tanh_scale_avoids_float_table_ties():
    """The relabelled input scale of an int8 TANH is one where LiteRT's float table has no entry
    near a rounding tie (numpy's float32 tanh may differ from the C library's by an ulp): the
    GRU keyword spotter's tanh had an entry 4e-6 from a tie and was 1 LSB off in LiteRT."""
    from edgeq import intmath_activations as ia
    rng = np.random.default_rng(0)
    for _ in range(40):
        s, zp = _scale(rng, -3, -1), _zp(rng, "int8")
        for kind in ("sigmoid", "tanh"):
            s2 = ia.agreeing_input_scale(kind, s, zp)
            table, margin = ia.litert_float_table(kind, s2, zp, with_margin=True)
            fixed = ia.logistic_table if kind == "sigmoid" else ia.tanh_table
            assert margin >= ia.FLOAT_TABLE_MARGIN and np.array_equal(table, fixed(s2, zp))
