"""Tests for edgeq.intmath_softmax: TFLite's reference int8 softmax in integer numpy.

Four layers of evidence:
1. accuracy against float softmax (with the measured, justified bound),
2. hand-checkable cases,
3. an independent scalar pure-Python big-integer model of the C code, written separately
   from the vectorised implementation (explicit int32 wrap / gemmlowp saturation),
4. bit-exactness against the real runtimes: TFLite Micro and LiteRT's reference kernels
   (OpResolverType.BUILTIN_REF), plus a <= 1 LSB check of LiteRT's default kernel, which
   uses a float exp lookup table instead (see the module report).
"""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.helpers import build_softmax_model, run_litert, run_tflm  # noqa: E402
from edgeq.intmath_softmax import (  # noqa: E402
    count_leading_zeros_u32,
    saturating_rounding_multiply_by_pot,
    softmax_int8,
    softmax_params,
)


def _float_softmax(x: np.ndarray, scale: float, beta: float = 1.0) -> np.ndarray:
    z = x.astype(np.float64) * float(np.float32(scale)) * float(np.float32(beta))
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _run(x: np.ndarray, scale: float, beta: float = 1.0) -> np.ndarray:
    return softmax_int8(x, **softmax_params(scale, beta))


# ---------------------------------------------------------------------------------------------
# 1. Accuracy against float softmax
# ---------------------------------------------------------------------------------------------
# Measured (seeded random int8 rows, scales 0.01..0.5, depths 2..1000):
#  * every output is within 1 LSB (1/256) of the float softmax;
#  * the only outputs above 0.5 LSB are the ones clamped at 127: the int8 output cannot
#    represent p in (255.5/256, 1] (largest value 255/256), so even exact rounding errs by up
#    to 1 LSB there;
#  * unclamped outputs stay within 0.5 LSB (round-to-nearest) + 2e-4 LSB.  The excess comes
#    from the fixed-point pipeline: Q5.26 exp input, ~1e-7 relative exp/reciprocal error and
#    Q12.19 accumulation (each term rounded to 2^-20 absolute).  It only moves results that
#    sit within ~1e-4 LSB of a rounding boundary, so a few outputs per 10^5 differ by one
#    from ideal round(256 p) - 128.  We assert 0.5 + 0.01 LSB, a margin of ~50x over the
#    measurement, and at most 1 LSB and < 1e-3 of outputs off the ideal quantization.

@pytest.mark.parametrize("scale", [0.01, 0.02, 0.05, 0.1, 0.2, 0.5])
@pytest.mark.parametrize("depth", [2, 10, 1000])
def test_close_to_float_softmax(scale: float, depth: int) -> None:
    rng = np.random.default_rng(depth * 1000 + int(scale * 1000))
    rows = 2000 if depth < 1000 else 100
    x = rng.integers(-128, 128, (rows, depth)).astype(np.int8)
    q = _run(x, scale).astype(np.float64)
    p = _float_softmax(x, scale)
    err_lsb = np.abs((q + 128.0) / 256.0 - p) * 256.0
    assert err_lsb.max() <= 1.0 + 1e-9
    unclamped = q < 127
    assert err_lsb[unclamped].max() <= 0.5 + 0.01
    ideal = np.clip(np.floor(p * 256.0 + 0.5) - 128.0, -128, 127)
    assert np.abs(q - ideal).max() <= 1
    assert (q != ideal).mean() < 1e-3


def test_beta_scales_like_input_scale() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (500, 16)).astype(np.int8)
    for beta in (0.5, 2.0, 0.3):
        q = _run(x, 0.05, beta).astype(np.float64)
        p = _float_softmax(x, 0.05, beta)
        assert np.abs((q + 128.0) / 256.0 - p).max() * 256.0 <= 1.0 + 1e-9


# ---------------------------------------------------------------------------------------------
# 2. Hand-checkable cases
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.01, 0.1, 0.5, 16.0])
def test_all_equal_gives_quantized_one_over_d(scale: float) -> None:
    p = softmax_params(scale)
    for d in range(1, 512):
        for value in (-128, 3, 127):
            q = softmax_int8(np.full((1, d), value, np.int8), **p)
            expected = min(math.floor(256.0 / d + 0.5) - 128, 127)
            assert (q == expected).all(), (d, value, q[0, 0], expected)


def test_single_dominant_input() -> None:
    x = np.full((3, 10), -128, np.int8)
    x[0, 0] = 127
    x[1, 7] = 127
    x[2, 3] = 100
    for scale in (0.1, 0.5):
        q = _run(x, scale)
        assert q[0, 0] == 127 and q[1, 7] == 127 and q[2, 3] == 127
        assert (np.sort(q, axis=1)[:, :-1] == -128).all()


def test_known_row() -> None:
    # float softmax of [1, 2, 3, 4] = [.0321, .0871, .2369, .6439] -> round(256 p) - 128
    x = np.array([[10, 20, 30, 40]], np.int8)
    assert _run(x, 0.1).tolist() == [[-120, -106, -67, 37]]


def test_params_match_hand_computation() -> None:
    # 0.5 * 2^26 = 2^25 = 0.5 * 2^26 -> M = 2^30, shift 26; radius = 31 * 2^26 / 2^26 = 31.
    assert softmax_params(0.5) == {"input_multiplier": 1 << 30, "input_left_shift": 26,
                                   "diff_min": -31}
    # float32(0.1) * 2^26 = 0.80000001 * 2^23 -> M = round(0.80000001 * 2^31), shift 23;
    # radius = 31 * 2^26 / 2^23 = 248.
    assert softmax_params(0.1) == {"input_multiplier": 1717986944, "input_left_shift": 23,
                                   "diff_min": -248}
    # beta folds into the multiplier exactly like the scale.
    assert softmax_params(0.25, 2.0) == softmax_params(0.5)
    # The real multiplier is capped at 2^31 - 1: M = 2^31 - 1, shift 31, diff_min 0.
    assert softmax_params(200.0) == {"input_multiplier": (1 << 31) - 1, "input_left_shift": 31,
                                     "diff_min": 0}
    with pytest.raises(ValueError):
        softmax_params(1e-9)  # QuantizeMultiplierGreaterThanOne needs beta*scale*2^26 > 1


def test_entries_below_diff_min_give_minus_128() -> None:
    # scale 16: M = 2^30, shift 31, diff_min = 0 -> everything but the row max is skipped.
    p = softmax_params(16.0)
    assert p["diff_min"] == 0
    q = softmax_int8(np.array([[5, 5, 4, -128], [7, 6, 7, 7]], np.int8), **p)
    assert q.tolist() == [[0, 0, -128, -128], [-43, -128, -43, -43]]
    # scale 0.5: diff_min = -31; entries 32+ below the max are skipped.
    p = softmax_params(0.5)
    x = np.array([[100, 100 - 31, 100 - 32, -128, 99]], np.int8)
    q = softmax_int8(x, **p)
    assert q[0, 2] == -128 and q[0, 3] == -128
    skipped = (x.astype(int) - x.max()) < p["diff_min"]
    assert (q[skipped] == -128).all()


def test_shapes_and_dtype() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 3, 4, 7)).astype(np.int8)
    q = _run(x, 0.07)
    assert q.dtype == np.int8 and q.shape == x.shape
    assert (q.reshape(-1, 7) == _run(x.reshape(-1, 7), 0.07)).all()
    assert (_run(x[0, 0, 0], 0.07) == q[0, 0, 0]).all()  # 1-D input


def test_row_sum_of_512_is_rejected_like_tflite() -> None:
    # TFLITE_CHECK(exponent <= 31) in reference/softmax.h fails once a row's sum of exps
    # reaches 512 (in units of exp(0)); see test_runtimes_abort_on_row_sum_of_512.
    p = softmax_params(0.01)
    assert (softmax_int8(np.zeros((1, 511), np.int8), **p) == -127).all()
    with pytest.raises(ValueError):
        softmax_int8(np.zeros((1, 512), np.int8), **p)


def test_helpers() -> None:
    vals = [0, 1, 2, 3, 255, 256, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, -1, -(1 << 31), 12345]
    assert count_leading_zeros_u32(np.array(vals)).tolist() == [
        32 - (v & 0xFFFFFFFF).bit_length() for v in vals]
    # gemmlowp's positive-exponent saturation threshold is symmetric: -2^30 saturates at e=1.
    out = saturating_rounding_multiply_by_pot(np.array([-(1 << 30), -(1 << 30) + 1, 1 << 30,
                                                        (1 << 30) - 1]), 1)
    assert out.tolist() == [-(1 << 31), -(1 << 31) + 2, (1 << 31) - 1, (1 << 31) - 2]


# ---------------------------------------------------------------------------------------------
# 3. Independent scalar model of the C code (Python ints, explicit int32 semantics)
# ---------------------------------------------------------------------------------------------

class _Ref:
    """Scalar transcription of reference/softmax.h + gemmlowp fixedpoint.h + common.h."""

    MIN, MAX = -(2 ** 31), 2 ** 31 - 1

    @staticmethod
    def i32(v: int) -> int:  # two's complement wrap (the C int32 add/sub/shift we rely on)
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >= (1 << 31) else v

    @classmethod
    def mulhi(cls, a: int, b: int) -> int:  # SaturatingRoundingDoublingHighMul
        if a == b == cls.MIN:
            return cls.MAX
        ab = a * b
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        n = ab + nudge
        q = abs(n) // (1 << 31)  # C division truncates toward zero
        return q if n >= 0 else -q

    @staticmethod
    def rdiv_pot(x: int, e: int) -> int:  # RoundingDivideByPOT
        assert 0 <= e <= 31
        mask = (1 << e) - 1
        rem = x & mask
        thr = (mask >> 1) + (1 if x < 0 else 0)
        return (x >> e) + (1 if rem > thr else 0)

    @classmethod
    def mul_pot(cls, x: int, e: int) -> int:  # SaturatingRoundingMultiplyByPOT<e>
        if e == 0:
            return x
        if e < 0:
            return cls.rdiv_pot(x, -e)
        thr = (1 << (31 - e)) - 1
        if x > thr:
            return cls.MAX
        if x < -thr:
            return cls.MIN
        return cls.i32(x * (1 << e))

    @classmethod
    def exp_quarter(cls, a: int) -> int:  # exp on [-1/4, 0), Q0.31
        c = 1895147668
        third = 715827883
        x = cls.i32(a + (1 << 28))
        x2 = cls.mulhi(x, x)
        x3 = cls.mulhi(x2, x)
        x4 = cls.mulhi(x2, x2)
        x4_4 = cls.mul_pot(x4, -2)
        t = cls.mul_pot(cls.i32(cls.mulhi(cls.i32(x4_4 + x3), third) + x2), -1)
        return cls.i32(c + cls.mulhi(c, cls.i32(x + t)))

    @classmethod
    def exp_neg(cls, a: int) -> int:  # exp_on_negative_values<int32, 5>
        ibits, fbits = 5, 26
        quarter = 1 << (fbits - 2)
        amq = cls.i32((a & (quarter - 1)) - quarter)
        result = cls.exp_quarter(cls.mul_pot(amq, ibits))  # Rescale<0>
        rem = cls.i32(amq - a)
        table = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308, 2: 39332535,
                 3: 720401, 4: 242}
        for k in range(-2, 5):
            if ibits > k and rem & (1 << (fbits + k)):
                result = cls.mulhi(result, table[k])
        # (no clamp: only for more than 5 integer bits)
        return cls.MAX if a == 0 else result

    @classmethod
    def recip(cls, s: int) -> tuple[int, int]:  # GetReciprocal(s, 12)
        u = s & 0xFFFFFFFF
        clz = 32 - u.bit_length()
        nbou = 12 - clz
        ssm1 = cls.i32(((u << (clz % 32)) & 0xFFFFFFFF) - (1 << 31))
        # one_over_one_plus_x_for_x_in_0_1
        tot = ssm1 + cls.MAX
        half = (tot + (1 if tot >= 0 else -1))
        half = abs(half) // 2 * (1 if half >= 0 else -1)
        x = cls.i32(1515870810 + cls.mulhi(half, -1010580540))
        for _ in range(3):
            hx = cls.mulhi(half, x)
            om = cls.i32((1 << 29) - hx)
            x = cls.i32(x + cls.mul_pot(cls.mulhi(x, om), 2))
        return cls.mul_pot(x, 1), nbou

    @classmethod
    def softmax_row(cls, row: list[int], mult: int, lshift: int, diff_min: int) -> list[int]:
        mx = max(row)
        exps = []
        acc = 0
        for v in row:
            d = v - mx
            if d >= diff_min:
                e = cls.exp_neg(cls.mulhi(cls.i32(d * (1 << lshift)), mult))
                acc = cls.i32(acc + cls.mul_pot(e, -12))
                exps.append(e)
            else:
                exps.append(None)
        scale, nbou = cls.recip(acc)
        expo = nbou + 31 - 8
        if not 0 <= expo <= 31:
            raise ValueError("TFLITE_CHECK")
        out = []
        for e in exps:
            if e is None:
                out.append(-128)
            else:
                o = cls.rdiv_pot(cls.mulhi(scale, e), expo) - 128
                out.append(max(-128, min(127, o)))
        return out


def test_matches_independent_scalar_model() -> None:
    rng = np.random.default_rng(2024)
    n_rows = 0
    for trial in range(60):
        scale = float(10 ** rng.uniform(-3.5, 1.5))
        beta = float(rng.choice([1.0, 1.0, 0.5, 2.0, 0.7]))
        try:
            p = softmax_params(scale, beta)
        except ValueError:
            continue
        depth = int(rng.choice([1, 2, 3, 5, 8, 16, 37]))
        x = rng.integers(-128, 128, (60, depth)).astype(np.int8)
        x[0] = rng.integers(120, 128, depth)                   # near-ties
        x[1] = -128
        x[2, :] = 127 if depth == 1 else rng.integers(-128, -120, depth)
        lo = int(rng.integers(-128, 100))
        x[3:20] = rng.integers(lo, lo + 28, (17, depth))       # narrow spread
        try:
            ours = softmax_int8(x, **p)
        except ValueError:
            ours = None
        ref_rows = []
        for row in x.tolist():
            try:
                ref_rows.append(_Ref.softmax_row(row, p["input_multiplier"],
                                                 p["input_left_shift"], p["diff_min"]))
            except ValueError:
                ref_rows = None
                break
        assert (ours is None) == (ref_rows is None), (scale, beta, depth)
        if ours is not None:
            assert ours.tolist() == ref_rows, (scale, beta, depth)
            n_rows += len(ref_rows)
    assert n_rows >= 2500


def test_scalar_model_on_long_rows() -> None:
    rng = np.random.default_rng(9)
    for scale in (0.02, 0.3):
        p = softmax_params(scale)
        x = rng.integers(-128, 128, (6, 400)).astype(np.int8)
        ours = softmax_int8(x, **p)
        for r in range(x.shape[0]):
            assert ours[r].tolist() == _Ref.softmax_row(x[r].tolist(), p["input_multiplier"],
                                                        p["input_left_shift"], p["diff_min"])


# ---------------------------------------------------------------------------------------------
# 4. Real runtimes
# ---------------------------------------------------------------------------------------------

_RUNTIME_CASES = [(s, b, d) for s in (0.004, 0.01, 0.0371, 0.1, 0.25, 0.5, 2.0, 16.0)
                  for b in (1.0, 0.6) for d in (1, 2, 10, 300)]


@pytest.mark.parametrize("scale,beta,depth", _RUNTIME_CASES)
def test_bit_exact_with_tflm_and_litert_reference(scale: float, beta: float, depth: int) -> None:
    rng = np.random.default_rng(int(scale * 1e4) + depth + int(beta * 10))
    x = rng.integers(-128, 128, (40, depth)).astype(np.int8)
    x[0] = 7
    x[1] = -128
    x[1, -1] = 127
    x[2] = rng.integers(110, 128, depth)
    try:
        ours = softmax_int8(x, **softmax_params(scale, beta))
    except ValueError:
        pytest.skip("row sum of exps >= 512: the runtimes abort (tested separately)")
    # The input zero point does not enter the kernel (softmax is shift invariant).
    buf = build_softmax_model(x.shape, scale, int(rng.integers(-128, 128)), beta)
    np.testing.assert_array_equal(run_tflm(buf, x), ours)
    np.testing.assert_array_equal(run_litert(buf, x, reference=True), ours)


def test_bit_exact_random_scales_many_rows() -> None:
    rng = np.random.default_rng(77)
    checked = 0
    for _ in range(25):
        scale = float(np.float32(10 ** rng.uniform(-2.5, 0.7)))
        depth = int(rng.choice([3, 5, 10, 33, 100]))
        x = rng.integers(-128, 128, (1000, depth)).astype(np.int8)
        try:
            ours = softmax_int8(x, **softmax_params(scale))
        except ValueError:
            continue
        buf = build_softmax_model(x.shape, scale, 0)
        np.testing.assert_array_equal(run_tflm(buf, x), ours)
        np.testing.assert_array_equal(run_litert(buf, x, reference=True), ours)
        checked += 1
    assert checked >= 20


def test_litert_default_kernel_within_one_lsb() -> None:
    # LiteRT's default SOFTMAX (kGenericOptimized) uses a float exp lookup table
    # (PopulateSoftmaxLookupTable + optimized_ops::Softmax), not the fixed-point algorithm:
    # it differs from the reference by 1 LSB on a few outputs per million (measured 52 of
    # 19.1M), and it does not abort on rows whose sum of exps is >= 512.
    rng = np.random.default_rng(11)
    n_diff = n_total = 0
    for scale in (0.01, 0.05, 0.1, 0.3):
        x = rng.integers(-128, 128, (5000, 10)).astype(np.int8)
        ours = softmax_int8(x, **softmax_params(scale))
        dflt = run_litert(build_softmax_model(x.shape, scale, 0), x, reference=False)
        d = np.abs(dflt.astype(np.int64) - ours.astype(np.int64))
        assert d.max() <= 1
        n_diff += int((d > 0).sum())
        n_total += d.size
    assert n_diff <= n_total * 1e-4


_ABORT_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    path, depth, which = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    buf = open(path, "rb").read()
    x = np.zeros((1, depth), np.int8)
    if which == "tflm":
        from tflite_micro.python.tflite_micro import runtime
        it = runtime.Interpreter.from_bytes(buf, arena_size=65536)
        it.set_input(x, 0)
        it.invoke()
        y = it.get_output(0)
    else:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        it = Interpreter(model_content=buf,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        y = it.get_tensor(it.get_output_details()[0]["index"])
    print("OK", int(y.min()), int(y.max()))
""")


@pytest.mark.parametrize("which", ["tflm", "litert_ref"])
def test_runtimes_abort_on_row_sum_of_512(which: str, tmp_path: Path) -> None:
    pytest.importorskip("tflite_micro")
    pytest.importorskip("ai_edge_litert")
    results = {}
    for depth in (511, 512):
        model = tmp_path / f"softmax_{depth}.tflite"
        model.write_bytes(build_softmax_model((1, depth), 0.01, 0))
        results[depth] = subprocess.run(
            [sys.executable, "-c", _ABORT_SCRIPT, str(model), str(depth), which],
            capture_output=True, text=True, timeout=120)
    ok, bad = results[511], results[512]
    assert ok.returncode == 0 and "OK -127 -127" in ok.stdout, ok.stderr[-2000:]
    assert (softmax_int8(np.zeros((1, 511), np.int8), **softmax_params(0.01)) == -127).all()
    assert bad.returncode != 0  # SIGABRT from TFLITE_CHECK(exponent <= 31)
    with pytest.raises(ValueError):
        softmax_int8(np.zeros((1, 512), np.int8), **softmax_params(0.01))
