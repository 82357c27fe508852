"""MUL's output scale: TFLite Micro derives the multiplier s1 s2 / s_out in double, LiteRT in
float32, and the op must pick scales where both give the same (M, shift). The float32 product
s1 * s2 rounds, so near some calibrated scales no output scale agrees; the search then moves
to coarser ones (never silently keeping a disagreeing scale), and a constant operand's own
scale is moved instead when one is at hand."""
import numpy as np

from edgeq.intmath import quantize_multiplier
from edgeq.ir import Graph, Node, QuantParams, Tensor
from edgeq.ops import get_op
from edgeq.ops.elementwise import float32_agreeing_scale


def _agree(s1: np.float32, s2: np.float32, so: np.float32) -> bool:
    """QuantizeMultiplier of the double and of the float32 derivation, compared as integers."""
    return quantize_multiplier(float(s1) * float(s2) / float(so)) == quantize_multiplier(float((s1 * s2) / so))


def _ratios(s1: np.float32, s2: np.float32):  # noqa: ANN202
    return lambda s: [(np.float64(s1) * np.float64(s2) / s.astype(np.float64), (s1 * s2) / s)]


def test_agreeing_scale_always_agrees_and_stays_within_2x():
    rng = np.random.default_rng(7)
    moved = 0
    for _ in range(150):
        s1, s2, so = (np.float32(10 ** rng.uniform(-5, 0)) for _ in range(3))
        r = np.float32(float32_agreeing_scale(float(so), _ratios(s1, s2)))
        assert _agree(s1, s2, r)
        assert 0.99 < r / so < 2.0
        moved += abs(r / so - 1) > 1e-3
    assert moved > 0          # the case the old search silently returned unchanged


def test_a_triple_with_no_agreeing_scale_nearby():
    """Found by the int16 stress test: within 65536 ulps of s_out no scale agrees (the float32
    product's error is 2 to 66 Q31 steps everywhere there)."""
    s1, s2, so = np.float32(6.093073e-05), np.float32(0.00014901989), np.float32(1.4636589e-05)
    assert not any(_agree(s1, s2, np.float32(so * (1 + k * 2e-7))) for k in range(-50, 50))
    r = np.float32(float32_agreeing_scale(float(so), _ratios(s1, s2)))
    assert _agree(s1, s2, r) and r > so


def test_mul_by_constant_moves_the_constant_scale_not_the_output():
    rng = np.random.default_rng(3)
    for trial in range(20):
        g = Graph()
        s_x = float(np.float32(10 ** rng.uniform(-4, 0)))
        g.add_tensor(Tensor("x", (1, 4, 6), "int8", quant=QuantParams(s_x, 3)))
        c = rng.normal(0, 2, (1, 1, 6))
        g.add_tensor(Tensor("c", c.shape, "float32", c.astype(np.float32)))
        g.add_tensor(Tensor("y", (1, 4, 6), "int8"))
        node = Node("mul", ["x", "c"], ["y"], {"activation": None}, "m")
        calibrated = float(np.float32(10 ** rng.uniform(-3, 1)))
        s_out, _ = get_op("mul").adjust_output_quant(node, g, calibrated, 0)
        s_c = np.float32(g.t("c").quant.scale[0])
        assert _agree(np.float32(s_x), s_c, np.float32(s_out))
        ulps = abs(int(np.float32(s_out).view(np.int32)) - int(np.float32(calibrated).view(np.int32)))
        assert ulps <= 64, trial
        nominal = (c.max() - min(c.min(), 0)) / 255
        assert abs(s_c / nominal - 1) < 1e-3
