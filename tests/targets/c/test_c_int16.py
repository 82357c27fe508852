"""C target in 16x8 mode (int16 activations, int8 weights, int64 biases), bit-exact with the
integer reference: the int64 requantization against numbers worked out by hand, each 16x8
kernel on small models (host gcc, also under ASan + UBSan, and layer by layer), every example
model with all capable activations in int16 and with a few (mixed precision, int8 <-> int16
requantize nodes), and a Cortex-M4 run under QEMU (slow)."""
from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from c_target_helpers import (CAL_SAMPLES, HOST_SAMPLES, QEMU_SAMPLES, Prepared, assert_bit_exact,
                              require_cross_tools, require_host_cc, to_graph_layout)
from edgeq import interpreter, intmath, pipeline
from edgeq.calibration import calibrate
from edgeq.passes.precision import int16_capable, promote
from edgeq.quantize import quantize
from edgeq.targets import load_profile
from edgeq.targets import c as c_target
from edgeq.targets.c.cheaders import KERNEL_DIR, KERNEL_DIR_S16
from edgeq.targets.c.lower import kernel_files
from examples.models import MODELS, synthetic_data
from tests.op_cases import CASES as OP_CASES
from tests.op_cases import INT16_CASES

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

#: Which int16-capable activations are promoted: all of them (the whole model 16x8 except its
#: int8 input), the first two, or every third from the second (several int8 <-> int16 borders).
VARIANTS = {
    "all": lambda ts: ts,
    "first2": lambda ts: ts[:2],
    "every3rd": lambda ts: ts[1::3],
}


def prepare16(name: str, model: nn.Module, shapes: list[tuple[int, ...]], cal: list[np.ndarray],
              ev: list[np.ndarray], variant: str) -> Prepared:
    fg = pipeline.float_graph(model, shapes)
    ranges = calibrate(fg, cal)
    capable = [n.outputs[0] for n in fg.nodes if int16_capable(fg, n.outputs[0])]
    q = quantize(promote(fg, VARIANTS[variant](capable)), ranges)
    g = c_target.prepare(q, load_profile("host-c"), {})
    ints = [interpreter.quantize_input(g, i, to_graph_layout(g, i, x), c_target.input_rounding)
            for i, x in enumerate(ev)]
    ref = interpreter.run(g, ints)
    return Prepared(f"{name}_{variant}", g, ints, [ref[o] for o in g.outputs])


def emit(p: Prepared, out_dir: Path, name: str | None = None) -> list[Path]:
    return c_target.emit(p.graph, out_dir, load_profile("host-c"), {"name": name or p.name})


def int16_tensors(p: Prepared) -> list[str]:
    return [n for n in p.graph.activations() if p.graph.t(n).dtype == "int16"]


# --------------------------------------------------------------------------- int64 requantization

# (x, multiplier, shift, expected), worked out by hand from TFLite's rule: reduced = (M + 2^15)
# >> 16 (0x7FFF if M >= 0x7FFF0000), total = 15 - shift, (x * reduced + 2^(total - 1)) >> total,
# then the int32 cast.
HAND_CASES = [
    # M = 2^30 (0.5): reduced = (2^30 + 2^15) >> 16 = 2^14 = 16384; shift 0: total 15.
    (3, 1 << 30, 0, 2),            # (49152 + 16384) >> 15 = 65536 / 32768 = 2: 1.5 ties up
    (-3, 1 << 30, 0, -1),          # (-49152 + 16384) >> 15 = -32768 >> 15 = -1: -1.5 ties up
    (-7, 1 << 30, 0, -3),          # (-114688 + 16384) >> 15 = -98304 >> 15 = -3: -3.5 ties up
    (-5, 1 << 30, -1, -1),         # total 16: (-81920 + 32768) >> 16 = -49152 >> 16 = -1 (-1.25)
    (5, 1 << 30, -1, 1),           # (81920 + 32768) >> 16 = 114688 >> 16 = 1 (1.25)
    (1000, 1 << 30, 3, 4000),      # total 12: (16384000 + 2048) >> 12 = 4000.5 floored = 4000
    # M = 0x7FFF8000 >= 0x7FFF0000: reduced saturates to 0x7FFF = 32767 (not (M + 2^15) >> 16 =
    # 0x8000, which would overflow int16); shift 0: (1000 * 32767 + 16384) >> 15 =
    # 32783384 >> 15 = 1000 (1000.47)
    (1000, 0x7FFF8000, 0, 1000),
    # M = 1518500250 (~ 0.7071 * 2^31): reduced = (1518500250 + 32768) >> 16 = 1518533018 >> 16
    # = 23170 (1518533018 = 23170 * 65536 + 63898); shift -2, total 17:
    # (-100000 * 23170 + 65536) >> 17 = -2316934464 >> 17 = floor(-17676.8) = -17677
    (-100000, 1518500250, -2, -17677),
    # a 2^40 accumulator: (2^40 * 2^14 + 2^13) >> 14 with shift 1 = 2^40, whose int32 cast wraps to 0;
    # 3 * 2^30 likewise -> 3221225472 - 2^32 = -1073741824
    (1 << 40, 1 << 30, 1, 0),
    (3 << 30, 1 << 30, 1, -1073741824),
]

HAND_PROGRAM = """\
#include <stdio.h>
#include "edgeq_support_s16.h"

static const int64_t xs[] = {%(xs)s};
static const int32_t ms[] = {%(ms)s};
static const int32_t ss[] = {%(ss)s};

int main(void)
{
    unsigned i;
    for (i = 0; i < sizeof xs / sizeof xs[0]; ++i) {
        printf("%%ld\\n", (long)edgeq_multiply_by_quantized_multiplier_int64(xs[i], ms[i], ss[i]));
    }
    for (i = 0; i < sizeof xs / sizeof xs[0]; ++i) {
        printf("%%d\\n", (int)edgeq_requantize_s16(xs[i], ms[i], ss[i], -32768, 32767));
    }
    return 0;
}
"""


def test_int64_requantization_by_hand(tmp_path: Path) -> None:
    require_host_cc()
    xs, ms, ss, want = (list(c) for c in zip(*HAND_CASES))
    # the reference agrees with the hand-worked numbers
    assert intmath.multiply_by_quantized_multiplier_int64(np.array(xs), np.array(ms), np.array(ss)).tolist() == want
    src = tmp_path / "hand.c"
    src.write_text(HAND_PROGRAM % {"xs": ", ".join(f"{x}LL" for x in xs), "ms": ", ".join(map(str, ms)),
                                   "ss": ", ".join(map(str, ss))})
    exe = tmp_path / "hand"
    subprocess.run(["gcc", "-O2", *STRICT, f"-I{KERNEL_DIR}", str(src), "-o", str(exe)], check=True)
    out = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert out[:len(xs)] == want
    assert out[len(xs):] == np.clip(want, -32768, 32767).tolist()


def test_int64_requantization_matches_the_reference_on_random_values(tmp_path: Path) -> None:
    """Accumulators over the whole int48 range, every multiplier rounding case, shifts -30..14."""
    require_host_cc()
    rng = np.random.default_rng(5)
    n = 4000
    xs = np.concatenate([rng.integers(-(1 << 47), 1 << 47, n // 2), rng.integers(-70000, 70000, n // 2)])
    ms = rng.integers(1 << 30, 1 << 31, n)
    ms[:50] = rng.integers(0x7FFF0000 - 2, 1 << 31, 50)      # around the saturation of the Q15 rounding
    ss = rng.integers(-30, 15, n)
    want = intmath.multiply_by_quantized_multiplier_int64(xs, ms, ss)
    (tmp_path / "in.txt").write_text("\n".join(f"{x} {m} {s}" for x, m, s in zip(xs, ms, ss)) + "\n")
    src = tmp_path / "rand.c"
    src.write_text('#include <stdio.h>\n#include "edgeq_support_s16.h"\nint main(void) {\n'
                   "    long long x; long m, s;\n"
                   '    while (scanf("%lld %ld %ld", &x, &m, &s) == 3) {\n'
                   '        printf("%ld\\n", (long)edgeq_multiply_by_quantized_multiplier_int64((int64_t)x, '
                   "(int32_t)m, (int32_t)s));\n    }\n    return 0;\n}\n")
    exe = tmp_path / "rand"
    subprocess.run(["gcc", "-O2", *STRICT, f"-I{KERNEL_DIR}", str(src), "-o", str(exe)], check=True)
    with open(tmp_path / "in.txt") as f:
        out = subprocess.run([str(exe)], stdin=f, capture_output=True, text=True, check=True).stdout.split()
    assert [int(v) for v in out] == want.tolist()


# --------------------------------------------------------------------------- 16x8 kernels

class ConvPool16(nn.Module):
    """Grouped + dilated conv, depthwise with multiplier 2, padded average pool, ceil-mode max
    pool, a 1x3 conv with 6 (not a multiple of 4) output channels; int8 clamps in between
    (requantize int16 -> int8 -> int16)."""

    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
        self.dw = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)
        self.rect = nn.Conv2d(16, 6, (1, 3), padding=(0, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.grouped(torch.relu(x))
        y = self.dw(F.hardtanh(y, -1.0, 1.0))
        y = F.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False)
        y = F.max_pool2d(y, 2, stride=2, ceil_mode=True)
        return self.rect(y)


class Padding16(nn.Module):
    """Padding wider than the kernel (windows wholly in the padding), dilation 3, and a
    depthwise conv with 5 channels (no 4-channel blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 2, stride=2, padding=3)
        self.dw = nn.Conv2d(5, 5, 2, stride=3, padding=3, groups=5)
        self.dil = nn.Conv2d(5, 7, 3, padding=4, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dil(self.dw(self.conv(x)))


class Residual16(nn.Module):
    """int16 adds (one with a fused ReLU, one in place), a transpose, a flatten and fully
    connected layers with 5 and 3 outputs (a 4-output block plus a remainder, and only a remainder)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.c = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 6, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        z = torch.relu(self.b(y) + y)
        z = self.c(z) + z
        t = z.permute(0, 2, 1, 3)                        # N, H, C, W: a real transpose in NHWC
        return self.fc2(self.fc1(torch.flatten(t, 1)))


class Pools16(nn.Module):
    """A max pool straight after the int8 -> int16 requantize of the input, then a global
    average pool and the graph output read as int16."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 9, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.max_pool2d(x, 3, stride=1, padding=1))
        return F.adaptive_avg_pool2d(F.max_pool2d(y, 2), 1)


class Sequence16(nn.Module):
    """The 16x8 sequence-model kernels: an LSTM-style gate (slices, sigmoid, tanh, a product),
    a product of two activations, a broadcast subtraction of a mean, abs and a sum."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)                                                  # 6 x 16
        g = torch.sigmoid(y[:, :, :8]) * torch.tanh(y[:, :, 8:])        # 6 x 8
        a = g @ g.transpose(-1, -2)                                     # 6 x 6
        d = a - a.mean(-1, keepdim=True)
        return torch.abs(d).sum(1)


ZOO16 = {
    "sequence16": (Sequence16, [(6, 8)]),
    "conv_pool16": (ConvPool16, [(4, 9, 11)]),
    "padding16": (Padding16, [(3, 5, 7)]),
    "residual16": (Residual16, [(3, 4, 6)]),
    "pools16": (Pools16, [(3, 8, 8)]),
}


@functools.lru_cache(maxsize=None)
def zoo16(name: str) -> Prepared:
    cls, shapes = ZOO16[name]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls().eval()
    rng = np.random.default_rng(0)
    cal = [rng.standard_normal((64, *s)).astype(np.float32) for s in shapes]
    ev = [rng.standard_normal((24, *s)).astype(np.float32) for s in shapes]
    return prepare16(name, model, list(shapes), cal, ev, "all")


@pytest.mark.parametrize("name", sorted(ZOO16))
def test_int16_kernels_bit_exact_on_host(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = zoo16(name)
    assert int16_tensors(p), "nothing was promoted"
    arts = emit(p, tmp_path)
    profile = load_profile("host-c")
    for opts in ({}, {"sanitize": True}):
        runs = c_target.run(p.graph, arts, profile, p.inputs, None, opts)
        assert_bit_exact(p, runs[0].outputs, where=f"(host gcc {opts})")
    # layer by layer on one sample (every int16 intermediate, not only the outputs)
    sample = [x[:1] for x in p.inputs]
    ref = interpreter.run(p.graph, sample, keep=True)
    assert "no layer differs" in c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})


def test_int16_kernels_are_chosen_by_dtype(tmp_path: Path) -> None:
    """Each 16x8 layer calls its _s16 kernel with int16 pointers, 16x8 biases are int64, only
    the kernels the models use are emitted, and every s16 kernel file is exercised here."""
    used: set[str] = set()
    for name in sorted(ZOO16):
        p = zoo16(name)
        arts = emit(p, tmp_path / name)
        names = {a.name for a in arts}
        used |= names
        src = (tmp_path / name / "c" / f"{p.name}.c").read_text()
        weights = (tmp_path / name / "c" / f"{p.name}_weights.c").read_text()
        for node in p.graph.nodes:
            wide = p.graph.t(node.outputs[0]).dtype == "int16"
            if node.op in ("conv2d", "depthwise_conv2d", "linear"):
                fn = {"linear": "edgeq_fully_connected"}.get(node.op, f"edgeq_{node.op}")
                assert (f"{fn}_s16(" in src) == wide or (f"{fn}_s8(" in src)
                if wide:
                    assert p.graph.t(node.inputs[2]).dtype == "int64"
                    assert "(int16_t *)(" in src
        if any(p.graph.t(n).dtype == "int64" for node in p.graph.nodes for n in node.inputs):
            assert "const int64_t" in weights
        kernels = {n.op for n in p.graph.nodes}
        if "depthwise_conv2d" not in kernels:
            assert "edgeq_depthwise_conv2d_s16.c" not in names
        if all(p.graph.t(n.outputs[0]).dtype == "int16" for n in p.graph.nodes if n.op == "conv2d"):
            assert "edgeq_conv2d.c" not in names                  # no int8 conv: no int8 kernel
    s16_files = {f.name for f in KERNEL_DIR_S16.glob("*.c")}
    assert s16_files == kernel_files(int16=True) - {"edgeq_copy.c"}
    assert s16_files <= used, f"s16 kernels no test model runs: {sorted(s16_files - used)}"


def test_every_int16_lowering_is_checked_against_the_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """As for the int8 kernels (test_c_ops): the 16x8 models here (and a mixed-precision one,
    for int16 -> int8) fill the parameter struct of every 16x8 kernel, each checked against the
    kernel headers at generation time."""
    from edgeq.targets.c.emit import generate
    from edgeq.targets.c.layer import LayerCode
    from edgeq.targets.c.lower import LOWERINGS
    checked: set[str] = set()
    params_struct = LayerCode.params_struct

    def recording(self, kernel, fields, suffix=""):
        name = params_struct(self, kernel, fields, suffix)
        checked.add(kernel.function)
        return name
    monkeypatch.setattr(LayerCode, "params_struct", recording)
    for p in [*(zoo16(name) for name in sorted(ZOO16)), example16("resnet8", "every3rd")]:
        generate(p.graph, p.name)
    wanted = {k.function for e in LOWERINGS.values() for k in e.int16_kernels if k.params}
    assert wanted - checked == set(), "16x8 kernels no model of this module fills a struct for"


def test_int16_kernels_compile_strictly_on_both_compilers(tmp_path: Path) -> None:
    """Each s16 kernel file alone with the profiles' strict flags plus -Wshadow -Wconversion."""
    require_host_cc()
    compilers = [["gcc", *load_profile("host-c").raw["compiler"]["cflags"]]]
    if shutil.which("arm-none-eabi-gcc"):
        m4 = load_profile("cortex-m4").raw["compiler"]
        compilers.append([m4["cc"], *m4["cflags"]])
    else:
        require_cross_tools()
    for cc in compilers:
        for src in sorted(KERNEL_DIR_S16.glob("*.c")):
            proc = subprocess.run([*cc, "-Wshadow", "-Wconversion", f"-I{KERNEL_DIR}", "-c", str(src),
                                   "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr, f"{cc[0]} {src.name}:\n{proc.stderr}"


def test_int16_output_api_and_memory_plan(tmp_path: Path) -> None:
    p = zoo16("pools16")
    out = p.graph.outputs[0]
    assert p.graph.t(out).dtype == "int16"
    emit(p, tmp_path)
    h = (tmp_path / "c" / "pools16_all.h").read_text()
    assert f"#define POOLS16_ALL_OUTPUT_SIZE {2 * p.graph.t(out).size}" in h
    assert "int16" in h and "aligned for int16_t" in h
    plan = c_target.model_plan(p.graph)
    for n, t in plan.tensors.items():
        item = np.dtype(p.graph.t(n).dtype).itemsize
        assert t.size == p.graph.t(n).size * item
        if item == 2:
            assert t.offset % 2 == 0


# --------------------------------------------------------------------------- single-op models

@functools.lru_cache(maxsize=None)
def op16(case: str) -> Prepared:
    """The op test model of ``case`` with every capable layer 16x8 (precision 16x8), quantized
    as the op tests do (min/max calibration)."""
    from edgeq.mixed_precision import PrecisionRequest
    model, shape = OP_CASES[case]
    rng = np.random.default_rng(0)
    cal = [rng.normal(0, 1, (48, *shape)).astype(np.float32)]
    ev = [rng.normal(0, 1.5, (24, *shape)).astype(np.float32)]       # wider: saturation too
    fg = pipeline.float_graph(model.eval(), [shape])
    q = pipeline.quantized_graph(fg, cal, method="minmax", precision=PrecisionRequest("16x8"))
    g = c_target.prepare(q, load_profile("host-c"), {})
    ints = [interpreter.quantize_input(g, i, to_graph_layout(g, i, x), c_target.input_rounding)
            for i, x in enumerate(ev)]
    ref = interpreter.run(g, ints)
    return Prepared(f"op16_{case}", g, ints, [ref[o] for o in g.outputs])


@pytest.mark.parametrize("case", INT16_CASES)
def test_single_op_models_16x8_bit_exact_on_host(case: str, tmp_path: Path) -> None:
    """Every 16x8 op test model (INT16_CASES: mul, sub, sigmoid, tanh, mean, sum, abs,
    batch_matmul, slice in an LSTM cell, ...): its int16 layers run their _s16 kernels, bit-exact
    with the integer reference on host gcc, plain and under ASan + UBSan, layer by layer."""
    require_host_cc()
    p = op16(case)
    wide = {n.op for n in p.graph.nodes if p.graph.t(n.outputs[0]).dtype == "int16"}
    assert wide, "nothing was promoted"
    arts = emit(p, tmp_path)
    src = (tmp_path / "c" / f"{p.name}.c").read_text()
    assert "_s16(" in src
    profile = load_profile("host-c")
    for opts in ({}, {"sanitize": True}):
        runs = c_target.run(p.graph, arts, profile, p.inputs, None, opts)
        assert_bit_exact(p, runs[0].outputs, where=f"(16x8 op model {case}, {opts or 'plain -O2'})")
    sample = [x[:1] for x in p.inputs]
    ref = interpreter.run(p.graph, sample, keep=True)
    assert "no layer differs" in c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})


# --------------------------------------------------------------------------- example models

@functools.lru_cache(maxsize=None)
def example16(name: str, variant: str) -> Prepared:
    factory, shape = MODELS[name]
    return prepare16(name, factory(), [shape], [synthetic_data(name, CAL_SAMPLES, 0)],
                     [synthetic_data(name, HOST_SAMPLES, 1)], variant)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_models_16x8_bit_exact_on_host(name: str, variant: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example16(name, variant)
    wide = int16_tensors(p)
    assert wide, "nothing was promoted"
    if variant != "all":
        assert any(p.graph.t(n).dtype == "int8" for n in p.graph.activations()), "not mixed"
        assert any(n.op == "requantize" for n in p.graph.nodes)
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, {})
    assert runs[0].extra["samples"] == HOST_SAMPLES
    assert_bit_exact(p, runs[0].outputs, where=f"({variant} int16, host gcc)")


@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v2_blocks"])
def test_example_models_16x8_under_sanitizers(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example16(name, "every3rd")
    arts = emit(p, tmp_path)
    n = 4
    runs = c_target.run(p.graph, arts, load_profile("host-c"), [x[:n] for x in p.inputs], None,
                        {"sanitize": True})
    assert_bit_exact(p, runs[0].outputs, n=n, where="(gcc -fsanitize=address,undefined)")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["all", "every3rd"])
def test_cortex_m4_qemu_16x8_bit_exact(variant: str, tmp_path: Path) -> None:
    require_cross_tools()
    p = example16("resnet8", variant)
    arts = emit(p, tmp_path)
    n = QEMU_SAMPLES
    runs = c_target.run(p.graph, arts, load_profile("cortex-m4"), [x[:n] for x in p.inputs], None, {})
    assert_bit_exact(p, runs[0].outputs, n=n, where=f"({variant} int16, Cortex-M4 under QEMU)")
    extra = runs[0].extra
    assert extra["samples"] == n and extra["instructions_per_inference"] > 0
    mem = c_target.memory(p.graph, arts, load_profile("cortex-m4"), {})
    assert mem["ram_bytes"] == mem["arena_bytes"]
    assert mem["stack_bytes"] > 0
