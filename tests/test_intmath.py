"""Integer math against an independent big-integer model (Python ints, exact rationals) and
hand-computed cases."""
from fractions import Fraction

import numpy as np
import pytest

from edgeq import intmath

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def big_srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul, written from its definition with Python ints."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    q = abs(ab + nudge) // 2**31          # C division truncates toward zero
    return q if ab + nudge >= 0 else -q


def big_rdbpot(x: int, e: int) -> int:
    """Round x / 2^e to nearest, ties away from zero, from exact rationals."""
    v = Fraction(x, 2**e)
    fl = v.numerator // v.denominator
    frac = v - fl
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and v > 0):
        return fl + 1
    return fl


def big_mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    y = (x * 2**left + 2**31) % 2**32 - 2**31  # int32 wrap, like the C code
    return big_rdbpot(big_srdhm(y, m), right)


def test_srdhm_hand_cases():
    f = intmath.saturating_rounding_doubling_high_mul
    assert int(f(I32_MIN, I32_MIN)) == I32_MAX          # the one saturating case
    assert int(f(2**30, 2**30)) == 2**29                 # 0.5 * 0.5 = 0.25 in Q31
    assert int(f(1, 2**30)) == 1                         # 0.5 rounds up (tie toward +inf)
    assert int(f(-1, 2**30)) == 0                        # -0.5 -> 0: nudge 1-2^30 then truncation
    assert int(f(-3, 2**30)) == -1                       # -1.5 -> -1
    assert int(f(I32_MAX, I32_MAX)) == I32_MAX - 1


def test_rdbpot_hand_cases():
    f = intmath.rounding_divide_by_pot
    assert [int(f(v, 1)) for v in (5, -5, 4, -4, 3, -3)] == [3, -3, 2, -2, 2, -2]  # ties away from 0
    assert int(f(7, 0)) == 7
    assert int(f(I32_MIN, 31)) == -1 and int(f(I32_MAX, 31)) == 1
    with pytest.raises(ValueError):
        f(1, 32)


def test_against_big_integer_model_random():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(I32_MIN, I32_MAX, 20000, endpoint=True),
                        [I32_MIN, I32_MAX, 0, 1, -1, 2**30, -(2**30)]])
    b = np.concatenate([rng.integers(I32_MIN, I32_MAX, 20000, endpoint=True), [I32_MIN, I32_MAX, 0, 1, -1, 2**30, -2]])
    got = intmath.saturating_rounding_doubling_high_mul(a, b)
    assert [int(v) for v in got] == [big_srdhm(int(x), int(y)) for x, y in zip(a, b)]
    e = rng.integers(0, 31, a.size, endpoint=True)
    got = intmath.rounding_divide_by_pot(a, e)
    assert [int(v) for v in got] == [big_rdbpot(int(x), int(k)) for x, k in zip(a, e)]


@pytest.mark.parametrize("shift", [-31, -20, -8, -1, 0, 1, 3, 10])
def test_multiply_by_quantized_multiplier(shift):
    rng = np.random.default_rng(shift + 100)
    x = rng.integers(-(2**20), 2**20, 5000)
    m = rng.integers(2**30, 2**31 - 1, 5000)
    got = intmath.multiply_by_quantized_multiplier(x, m, shift)
    assert [int(v) for v in got] == [big_mbqm(int(a), int(b), shift) for a, b in zip(x, m)]


@pytest.mark.parametrize("real", [1e-12, 2.0**-32, 0.000123, 0.25, 0.5, 0.75, 0.9999999999, 1.0, 1.5, 3.0, 1234.5])
def test_quantize_multiplier_represents_real(real):
    m, shift = intmath.quantize_multiplier(real)
    if real < 2.0**-32:   # exponent below -31 flushes to zero, as TFLite does
        assert (m, shift) == (0, 0)
        return
    assert 2**30 <= m < 2**31
    approx = Fraction(m, 2**31) * Fraction(2) ** shift
    assert abs(approx - Fraction(real)) <= Fraction(2) ** (shift - 32)  # within half a Q31 step


def test_quantize_multiplier_rounds_up_to_next_power():
    # q * 2^31 rounds to 2^31 -> renormalised to 2^30 with exponent + 1
    real = 1.0 - 2.0**-33
    assert intmath.quantize_multiplier(real) == (2**30, 1)
    assert intmath.quantize_multiplier(0.0) == (0, 0)


def test_requantize_matches_exact_rounding_for_small_multipliers():
    """The double rounding is within 1 of exact round(x * real) for typical conv multipliers."""
    rng = np.random.default_rng(1)
    real = 0.0037
    m, s = intmath.quantize_multiplier(real)
    x = rng.integers(-(2**24), 2**24, 10000)
    got = intmath.multiply_by_quantized_multiplier(x, m, s)
    exact = np.round(x * (m / 2**31) * 2.0**s)
    assert np.abs(got - exact).max() <= 1


# --- 16x8: int64 accumulator requantization -------------------------------------------------

def big_mbqm_int64(x: int, m: int, shift: int) -> int:
    """TFLite's int64 MultiplyByQuantizedMultiplier from its definition, with exact rationals:
    the Q31 multiplier rounded to Q15 (ties up), then x * m15 / 2^(15 - shift) rounded to nearest
    with ties toward +inf."""
    m15 = min(Fraction(m, 2**16) + Fraction(1, 2), Fraction(2**15)).__floor__() if m < 0x7FFF0000 else 0x7FFF
    v = Fraction(x * m15, 2 ** (15 - shift))
    return (v + Fraction(1, 2)).__floor__()


def test_mbqm_int64_hand_cases():
    f = intmath.multiply_by_quantized_multiplier_int64
    half = 1 << 30                                   # 0.5 in Q31 -> 0.5 in Q15 (16384)
    assert int(f(10, half, 0)) == 5                   # 10 * 0.5
    assert int(f(5, half, 0)) == 3                    # 2.5: tie rounds toward +inf
    assert int(f(-5, half, 0)) == -2                  # -2.5: tie toward +inf, not away from zero
    assert int(f(-7, half, -1)) == -2                 # -7 * 0.25 = -1.75
    assert int(f(3, half, 2)) == 6                    # 3 * 0.5 * 4
    # M >= 0x7FFF0000 (just under 1.0) reduces to 0x7FFF, not 2^15: 2^40 * 32767 / 2^35
    assert int(f(1 << 40, (1 << 31) - 1, -20)) == 32 * 32767
    assert int(f(100, 0x7FFF8000, 0)) == 100           # 100 * 32767 / 32768 = 99.997 -> 100


def test_mbqm_int64_matches_big_integer_model():
    rng = np.random.default_rng(7)
    xs = rng.integers(-(2**47), 2**47, 3000, dtype=np.int64)
    xs[:500] = rng.integers(-(2**20), 2**20, 500)
    ms = rng.integers(2**30, 2**31, 3000, dtype=np.int64)
    ms[:50] = rng.integers(0x7FFF0000, 2**31, 50)     # the saturated reduction branch
    shifts = rng.integers(-31, 8, 3000)
    got = intmath.multiply_by_quantized_multiplier_int64(xs, ms, shifts)
    for x, m, s, g in zip(xs.tolist(), ms.tolist(), shifts.tolist(), got.tolist()):
        want = big_mbqm_int64(x, m, s)
        want = (want + 2**31) % 2**32 - 2**31          # the C cast to int32
        assert g == want, (x, m, s)
