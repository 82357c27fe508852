"""The integer kernels' fast paths against independent references: conv / FC sums through
float32 (bound below 2^24) or float64 against Python-integer sums (exact below 2^53, and equal
to the int32 accumulator below 2^31: intmath.EXACT_FLOAT64), the int32 wrap kept above that bound, PReLU's lookup table
against its elementwise kernel, max pooling against the windows' maxima."""
import numpy as np
import pytest

from edgeq import intmath
from edgeq.ir import Node
from edgeq.ops import get_op
from edgeq.ops.base import Padding
from edgeq.ops.conv2d import conv2d_int
from edgeq.ops.linear import linear_int
from edgeq.ops.pool import _windows


def _conv_acc_python(x, w, stride, pad, groups, zp):
    """sum w * (x - zp) with Python ints (zero padding), NCHW / OIHW."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    pt, pl, pb, pr = pad
    oh, ow = (h + pt + pb - kh) // stride + 1, (wd + pl + pr - kw) // stride + 1
    xs = [[[[0] * (wd + pl + pr) for _ in range(h + pt + pb)] for _ in range(c)] for _ in range(n)]
    for b in range(n):
        for ci in range(c):
            for i in range(h):
                for j in range(wd):
                    xs[b][ci][i + pt][j + pl] = int(x[b, ci, i, j]) - zp
    acc = np.zeros((n, o, oh, ow), dtype=object)
    per = o // groups
    for b in range(n):
        for oc in range(o):
            g = oc // per
            for i in range(oh):
                for j in range(ow):
                    acc[b, oc, i, j] = sum(int(w[oc, k, u, v]) * xs[b][g * cg + k][i * stride + u][j * stride + v]
                                           for k in range(cg) for u in range(kh) for v in range(kw))
    return acc


def _wrap32(v):
    return ((v + 2**31) % 2**32) - 2**31


@pytest.mark.parametrize("case", range(12))
def test_conv_float64_sums_are_the_integer_sums(case):
    rng = np.random.default_rng(case)
    groups = [1, 2, 1, 4][case % 4]
    cin, cout = 2 * groups, 2 * groups
    k, stride = 1 + case % 3, 1 + case % 2
    pad = Padding(*(int(v) for v in rng.integers(0, 2, 4)))
    x = rng.integers(-128, 128, (2, cin, 7, 6)).astype(np.int8)
    w = rng.integers(-127, 128, (cout, cin // groups, k, k)).astype(np.int8)
    zp = int(rng.integers(-128, 128))
    m = np.full(cout, 1 << 30, dtype=np.int64)       # 0.5 * 2^-6: acc / 128, rounded
    sh = np.full(cout, -6, dtype=np.int64)
    y = conv2d_int(x, w, np.zeros(cout, np.int32), (stride, stride), pad, (1, 1), groups, zp, m, sh, 3, -128, 127)
    ref = _conv_acc_python(x, w, stride, pad, groups, zp).astype(np.int64)
    expect = intmath.requantize(ref, m[None, :, None, None], sh[None, :, None, None], 3, -128, 127)
    np.testing.assert_array_equal(y, expect.astype(np.int8))


# (input channels, output channels, groups, kernel): depthwise 3x3 (float32), 64 x 3x3 taps
# (576 * 255 * 127 > 2^24: float64), depthwise 23x23 (529 taps: above 2^24, the tap loop)
@pytest.mark.parametrize("shape", [(6, 6, 6, 3), (64, 2, 1, 3), (2, 2, 2, 23)])
def test_conv_each_exact_path_and_the_loop_are_the_integer_sums(shape):
    cin, cout, groups, k = shape
    rng = np.random.default_rng(k)
    x = rng.integers(-128, 128, (2, cin, k + 1, k)).astype(np.int8)
    w = rng.integers(-127, 128, (cout, cin // groups, k, k)).astype(np.int8)
    w[0, 0, 0, 0] = -127                     # the bound's worst case present
    zp = -128
    pad = Padding(1, 0, 0, 1)
    m, sh = np.full(cout, 1 << 30, dtype=np.int64), np.full(cout, -8, dtype=np.int64)
    y = conv2d_int(x, w, np.arange(cout, dtype=np.int32), (1, 1), pad, (1, 1), groups, zp, m, sh, -1, -128, 127)
    ref = _conv_acc_python(x, w, 1, pad, groups, zp).astype(np.int64) + np.arange(cout)[None, :, None, None]
    expect = intmath.requantize(ref, m[None, :, None, None], sh[None, :, None, None], -1, -128, 127)
    np.testing.assert_array_equal(y, expect.astype(np.int8))


def test_exact_float_type_bounds():
    lim = intmath.INT32_LIMIT
    assert intmath.exact_float_type(2**24 - 1, lim) is np.float32
    assert intmath.exact_float_type(2**24, lim) is np.float64
    assert intmath.exact_float_type(lim, lim) is None
    assert intmath.exact_float_type(2**40, intmath.EXACT_FLOAT64) is np.float64


def test_linear_float_sums_and_the_int32_wrap_above_its_bound():
    """k = 3: float32; 600 (600 * 255 * 127 > 2^24): float64; 70 000: the int32 loop."""
    rng = np.random.default_rng(7)
    for k in (3, 600, 70_000):      # 70 000 * 255 * 127 > 2^31: the int32 sums wrap (the loop path)
        x = np.where(rng.random((2, k)) < 0.5, -128, 127).astype(np.int8)
        w = np.full((3, k), 127, dtype=np.int8) * np.where(x[:1] > 0, 1, -1).astype(np.int8)
        acc = [[_wrap32(sum(int(a) * int(b) for a, b in zip((x[i].astype(np.int64) + 5).tolist(), w[j].tolist())))
                for j in range(3)] for i in range(2)]
        m, s = np.array([1 << 30], np.int64), np.array([1], np.int64)      # x 1: acc itself, saturated
        y = linear_int(x, w, np.zeros(3, np.int32), -5, m, s, 0, -128, 127)
        expect = np.clip(intmath.multiply_by_quantized_multiplier(np.array(acc, np.int64), m[0], s[0]), -128, 127)
        np.testing.assert_array_equal(y, expect)


def test_prelu_table_is_its_elementwise_kernel():
    rng = np.random.default_rng(3)
    op = get_op("prelu")
    node = Node("prelu", ["x", "a"], ["y"], {"input_zero_point": -3, "alpha_zero_point": 11, "output_zero_point": 7,
                                             "multiplier_1": 1_500_000_000, "shift_1": 0,
                                             "multiplier_2": 1_200_000_000, "shift_2": -7}, "p")
    x = rng.integers(-128, 128, (40, 6, 5, 5)).astype(np.int8)
    alpha = rng.integers(-128, 128, (1, 6, 1, 1)).astype(np.int8)
    np.testing.assert_array_equal(op.run_int(node, None, [x, alpha])[0], op._kernel(node, x, alpha))


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_is_the_windows_maximum(ceil_mode):
    rng = np.random.default_rng(1)

    class G:
        layout, quantized = "nchw", False
    node = Node("max_pool2d", ["x"], ["y"], {"kernel": (3, 2), "stride": (2, 2), "padding": Padding(1, 0, 1, 1),
                                             "ceil_mode": ceil_mode, "activation": None,
                                             "act_min": -128, "act_max": 127}, "p")
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    win, _ = _windows(x, node, -np.inf)
    np.testing.assert_array_equal(get_op("max_pool2d").run_float(node, G, [x])[0], win.max(axis=(4, 5)))
    xi = rng.integers(-128, 128, (2, 3, 9, 8)).astype(np.int8)
    win, _ = _windows(xi, node, -128)
    np.testing.assert_array_equal(get_op("max_pool2d").run_int(node, G, [xi])[0], win.max(axis=(4, 5)))
