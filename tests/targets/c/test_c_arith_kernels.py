"""The fixed-point kernels of the sequence-model ops against the integer reference
(edgeq/intmath_elementwise.py) on every int8 operand pair, not only on the values a model
produces: DIV (reciprocal, headroom, right shifts past 31 bits), SQUARED_DIFFERENCE, and
L2_NORMALIZATION's inverse square root on rows whose sums of squares span the int32 range."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from c_target_helpers import require_host_cc
from edgeq import intmath_elementwise as ie
from edgeq.targets.c.cheaders import KERNEL_DIR

STRICT = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
ALL = np.arange(-128, 128, dtype=np.int64)


def _run(tmp_path: Path, sources: list[str], main: str) -> list[int]:
    src = tmp_path / "main.c"
    src.write_text(main)
    exe = tmp_path / "main"
    subprocess.run(["gcc", *STRICT, f"-I{KERNEL_DIR}", str(src), *(str(KERNEL_DIR / s) for s in sources),
                    "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return [int(v) for v in out.split()]


def _values(xs: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in xs)


#: broadcast shape of every int8 pair: input1 along rows (stride 1, then 0), input2 along columns
PAIRS = "{2, {256, 256, 1, 1, 1, 1}, {1, 0, 0, 0, 0, 0}, {0, 1, 0, 0, 0, 0}}"
PAIR_MAIN = """\
#include <stdio.h>
#include "edgeq_arithmetic.h"
static const int8_t x[256] = {%(all)s};
static int8_t y[256 * 256];
int main(void)
{
    static const %(ctype)s p = {%(fields)s, %(shape)s};
    int i;
    %(call)s(&p, x, x, y);
    for (i = 0; i < 256 * 256; ++i) {
        printf("%%d\\n", y[i]);
    }
    return 0;
}
"""

# (zp1, zp2, zp_out, s1, s2, s_out): ordinary scales, a numerator scale far above the
# denominator's (large quotients), and one far below (right shifts past 31 bits)
DIV_CASES = [(0, 0, 0, 0.05, 0.02, 0.1), (-128, 17, -5, 0.004, 0.0039, 1.7), (30, -128, 100, 0.5, 0.001, 2.0),
             (-3, 3, 0, 1e-4, 0.9, 0.3)]


@pytest.mark.parametrize("case", DIV_CASES)
def test_div_every_int8_pair(case: tuple, tmp_path: Path) -> None:
    require_host_cc()
    zp1, zp2, zpo, s1, s2, so = case
    m, sh = ie.div_multiplier(s1, s2, so)
    lo, hi = ie.div_shift_range(sh, zp1, zp2)
    assert lo >= 0
    want = ie.div_int8(ALL[:, None], ALL[None, :], zp1, zp2, zpo, m, sh, -128, 127)
    got = _run(tmp_path, ["edgeq_div.c"], PAIR_MAIN % {
        "all": _values(ALL), "ctype": "edgeq_div_params", "call": "edgeq_div_s8", "shape": PAIRS,
        "fields": f"{-zp1}, {-zp2}, {zpo}, {m}, {sh}"})
    assert np.array_equal(np.array(got).reshape(256, 256), want), (case, hi)


@pytest.mark.parametrize("case", [(0, 0, -128, 0.02, 0.02, 0.01), (-128, 90, 5, 0.1, 0.003, 0.7),
                                  (12, -40, -128, 0.8, 0.8, 0.05)])
def test_squared_difference_every_int8_pair(case: tuple, tmp_path: Path) -> None:
    require_host_cc()
    zp1, zp2, zpo, s1, s2, so = case
    p = ie.squared_difference_params(s1, s2, so, 7)
    want = ie.squared_difference_int(p, ALL[:, None], ALL[None, :], zp1, zp2, zpo, -128, 127)
    fields = (f"{p['left_shift']}, {-zp1}, {p['input1_multiplier']}, {p['input1_shift']}, "
              f"{-zp2}, {p['input2_multiplier']}, {p['input2_shift']}, {zpo}, {p['output_multiplier']}, "
              f"{p['output_shift']}")
    got = _run(tmp_path, ["edgeq_squared_difference.c"], PAIR_MAIN % {
        "all": _values(ALL), "ctype": "edgeq_squared_difference_params", "call": "edgeq_squared_difference_s8",
        "shape": PAIRS, "fields": fields})
    assert np.array_equal(np.array(got).reshape(256, 256), want), case


L2_MAIN = """\
#include <stdio.h>
#include "edgeq_normalize.h"
static const int8_t x[%(n)d] = {%(values)s};
static int8_t y[%(n)d];
int main(void)
{
    static const edgeq_l2_normalize_params p = {%(rows)d, %(depth)d, 1, %(offset)d};
    int i;
    edgeq_l2_normalize_s8(&p, x, y);
    for (i = 0; i < %(n)d; ++i) {
        printf("%%d\\n", y[i]);
    }
    return 0;
}
"""


@pytest.mark.parametrize("depth", [1, 3, 64, 4096])
def test_l2_normalize_rows(depth: int, tmp_path: Path) -> None:
    """Rows of random, constant, all-zero and extreme values: sums of squares from 0 (and 1)
    up to 4096 * 256^2 = 2^28, every branch of the inverse square root's normalisation."""
    require_host_cc()
    rng = np.random.default_rng(depth)
    zp = -7
    rows = [rng.integers(-128, 128, depth), np.full(depth, zp), np.full(depth, 127), np.full(depth, -128),
            np.where(np.arange(depth) == 0, zp + 1, zp), rng.integers(zp - 3, zp + 4, depth)]
    x = np.stack(rows).astype(np.int64)
    want = ie.l2_normalize_int8(x, zp)
    got = _run(tmp_path, ["edgeq_l2_normalize.c"], L2_MAIN % {
        "n": x.size, "values": _values(x.reshape(-1)), "rows": len(rows), "depth": depth, "offset": -zp})
    assert np.array_equal(np.array(got).reshape(x.shape), want)
