"""C kernels beyond the example models: grouped/dilated conv, depthwise multiplier, padded and
ceil-mode pooling, standalone clamp, transpose, softmax on a strided axis, broadcast add,
several inputs and outputs, the sequence-model ops (layer norm, attention products, gathers,
masked means, L2 normalization, token ids); plus two models linked into one program."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from c_target_helpers import Prepared, assert_bit_exact, emit, prepare_model, require_cross_tools, require_host_cc
from edgeq import interpreter, pipeline
from edgeq.ir import Graph, Node, Tensor
from edgeq.targets import load_profile
from edgeq.targets import c as c_target
from tests.op_cases import CASES as OP_CASES


class ConvPoolZoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2)
        self.dw = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)    # depth multiplier 2
        self.rect = nn.Conv2d(16, 6, (1, 3), padding=(0, 1))
        self.dw3 = nn.Conv2d(16, 16, 3, padding=1, groups=16)          # the 3x3 depthwise kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.grouped(torch.relu(x))                 # clamp on the graph input
        y = self.dw3(self.dw(F.hardtanh(y, -1.0, 1.0)))
        y = F.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False)
        y = F.max_pool2d(y, 2, stride=2, ceil_mode=True)
        return self.rect(y)


class PaddingZoo(nn.Module):
    """Padding wider than the kernel: whole windows in the padding (empty sums)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 2, stride=2, padding=3)
        self.dw = nn.Conv2d(5, 5, 2, stride=3, padding=3, groups=5)
        self.dil = nn.Conv2d(5, 4, 3, padding=4, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dil(self.dw(self.conv(x)))


class SoftmaxTransposeZoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        z = y + torch.relu(y)                           # add in place into a dead input
        a = torch.softmax(z, dim=1)                     # channels: contiguous in NHWC
        b = torch.softmax(z, dim=3)                     # width: strided
        return a, torch.relu(b), torch.flatten(z.permute(0, 2, 1, 3), 1)


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(10, 16), nn.Linear(6, 16), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc1(x) + self.fc2(y)))


class ElementwiseZoo(nn.Module):
    """Broadcasting both ways and on either side, constant first operands, in-place chains,
    leaky ReLU with a slope above 1, PReLU with negative slopes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.prelu = nn.PReLU(6)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.tensor([0.25, -0.5, 1.5, 0.0, -0.05, 0.7]))
        self.k = nn.Parameter(torch.tensor([[[-0.3]], [[0.2]], [[0.0]], [[-1.0]], [[0.5]], [[0.1]]]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        a = F.leaky_relu(y, 1.7)
        b = self.prelu(y)
        m = a.mean((2, 3), keepdim=True) * b           # broadcast operand first
        s = 0.5 - y                                    # constant first operand
        t = torch.maximum(x[:, :1], s)                 # broadcast over channels
        u = torch.minimum(m - y[:, :, :1, :], self.k)  # broadcast over rows, then a constant
        return u * t, torch.sigmoid(m) - b, F.leaky_relu(t, 0.01)


class MovementZoo(nn.Module):
    """Pads on both spatial axes, strided slices, concat on channels (rescaled) and on rows
    (contiguous parts), nearest resize by non-integer factors, up and down."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)                                           # 4 x 7 x 9
        p = F.pad(y, (2, 1, 3, 0), value=-0.25)                    # 4 x 10 x 12
        c = torch.cat([p[:, :, ::2, 1::3], 2 * p[:, 1:3, ::2, ::3]], 1)   # 6 x 5 x 4
        r = F.interpolate(c, size=(7, 6), mode="nearest")
        d = F.interpolate(r, scale_factor=0.5, mode="nearest")     # 6 x 3 x 3
        rows = torch.cat([d, torch.relu(d), d[:, :, :1]], 2)       # 6 x 7 x 3
        return rows, F.pad(r, (0, 0, 1, 1))


class HeadsZoo(nn.Module):
    """Bilinear resize up, down and with align_corners; log-softmax, means over mixed axes, an
    argmax output between int8 outputs (its int32 bytes at an odd offset), a transposed conv."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.up = nn.ConvTranspose2d(5, 6, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.conv(x)                                                      # 5 x 5 x 7
        up = F.interpolate(y, size=(10, 14), mode="bilinear")
        down = F.interpolate(y, size=(3, 3), mode="bilinear")        # 45 bytes: argmax at 45
        corners = F.interpolate(y, size=(9, 13), mode="bilinear", align_corners=True)
        return (torch.log_softmax(down, dim=1), corners.argmax(1), up.mean((1, 3)),
                corners.mean(1, keepdim=True), torch.relu(self.up(y)))


class StemMaxZoo(nn.Module):
    """A one-channel input (the one-channel conv kernel) and maxima over axes that are no
    global pooling: channels, height (reduce_max)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.stem(x)
        return y.amax(1), y.amax(2, keepdim=True)


class SequenceOpsZoo(nn.Module):
    """LayerNorm (squared difference, rsqrt), attention products of two activations (3-D, and
    4-D per head: NHWC-stored operands read through strides), reflect padding (a gather), a
    masked mean (sum, div), abs, an L2-normalised output."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        self.gate = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.norm(x)                                                       # 6 x 8
        q, k, v = self.q(y), self.k(y), self.v(y)
        a = torch.softmax(q @ k.transpose(-1, -2) * 0.35, -1) @ v              # 6 x 8
        heads = q.view(-1, 6, 2, 4).transpose(1, 2) @ k.view(-1, 6, 2, 4).permute(0, 2, 3, 1)  # 2 x 6 x 6
        padded = F.pad(a.transpose(1, 2), (2, 3), mode="reflect")              # 8 x 11
        w = torch.sigmoid(self.gate(a))                                        # 6 x 1
        mean = (a * w).sum(1) / w.sum(1).clamp(min=1e-9)                      # 8
        return F.normalize(torch.abs(mean - 0.1), dim=-1), heads, padded


class TokenZoo(nn.Module):
    """int64 token ids (an embedding, ids out of range clamped) and an int64 mask (a cast) in
    a masked mean."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(torch.float32)
        return self.out((self.emb(ids) * m).sum(1) / m.sum(1).clamp(min=1.0))


ZOO = {
    "sequence_ops_zoo": (SequenceOpsZoo, [(6, 8)]),
    "heads_zoo": (HeadsZoo, [(3, 5, 7)]),
    "elementwise_zoo": (ElementwiseZoo, [(3, 5, 6)]),
    "movement_zoo": (MovementZoo, [(3, 7, 9)]),
    "conv_pool_zoo": (ConvPoolZoo, [(4, 9, 11)]),
    "softmax_transpose_zoo": (SoftmaxTransposeZoo, [(3, 6, 5)]),
    "padding_zoo": (PaddingZoo, [(3, 5, 7)]),
    "two_inputs": (TwoInputs, [(10,), (6,)]),
    "stem_max_zoo": (StemMaxZoo, [(1, 9, 8)]),
}

_CACHE: dict[str, Prepared] = {}


def zoo(name: str) -> Prepared:
    if name not in _CACHE:
        cls, shapes = ZOO[name]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = cls().eval()
        rng = np.random.default_rng(0)
        cal = [rng.standard_normal((64, *s)).astype(np.float32) for s in shapes]
        ev = [rng.standard_normal((24, *s)).astype(np.float32) for s in shapes]
        _CACHE[name] = prepare_model(name, model, shapes, cal, ev)
    return _CACHE[name]


def broadcast_add() -> Prepared:
    """a (1,8,4,5) + b (1,8,1,1) and a (1,3,6) + c (1,1,6): built by hand (the front end does
    not trace broadcasting adds yet)."""
    if "broadcast_add" in _CACHE:
        return _CACHE["broadcast_add"]
    g = Graph(layout="nchw")
    for name, shape in (("a", (1, 8, 4, 5)), ("b", (1, 8, 1, 1)), ("y", (1, 8, 4, 5)),
                        ("p", (1, 3, 6)), ("q", (1, 1, 6)), ("z", (1, 3, 6))):
        g.add_tensor(Tensor(name, shape))
    g.nodes = [Node("add", ["a", "b"], ["y"], {"activation": {"min": 0.0, "max": None}}, "add_4d", "m.add"),
               Node("add", ["p", "q"], ["z"], {}, "add_3d", "m.add3")]
    g.inputs, g.outputs = ["a", "b", "p", "q"], ["y", "z"]
    rng = np.random.default_rng(3)
    shapes = [g.t(n).shape for n in g.inputs]
    cal = [rng.standard_normal((32, *s[1:])).astype(np.float32) * (i + 1) for i, s in enumerate(shapes)]
    ev = [rng.standard_normal((16, *s[1:])).astype(np.float32) * (i + 1) for i, s in enumerate(shapes)]
    qg = pipeline.quantized_graph(g, cal)
    ng = c_target.prepare(qg, load_profile("host-c"), {})
    from c_target_helpers import to_graph_layout
    ints = [interpreter.quantize_input(ng, i, to_graph_layout(ng, i, x), "half_away") for i, x in enumerate(ev)]
    ref = interpreter.run(ng, ints)
    _CACHE["broadcast_add"] = Prepared("broadcast_add", ng, ints, [ref[o] for o in ng.outputs])
    return _CACHE["broadcast_add"]


def token_zoo() -> Prepared:
    """TokenZoo on 6 token ids (int64, some outside the vocabulary of 20 in the evaluation
    samples) and a 0/1 mask with ones first, exported with int64 inputs."""
    if "token_zoo" in _CACHE:
        return _CACHE["token_zoo"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TokenZoo().eval()
    example = (torch.zeros((1, 6), dtype=torch.int64), torch.ones((1, 6), dtype=torch.int64))
    ep = torch.export.export(model, example)
    rng = np.random.default_rng(4)

    def data(n: int, low: int, high: int) -> list[np.ndarray]:
        ids = rng.integers(low, high, (n, 6)).astype(np.int64)
        lengths = rng.integers(1, 7, n)
        mask = (np.arange(6)[None, :] < lengths[:, None]).astype(np.int64)
        return [ids, mask]
    qg = pipeline.quantized_graph(pipeline.float_graph(ep), data(48, 0, 20))
    g = c_target.prepare(qg, load_profile("host-c"), {})
    ev = data(24, -3, 24)
    ints = [interpreter.quantize_input(g, i, x, c_target.input_rounding) for i, x in enumerate(ev)]
    ref = interpreter.run(g, ints)
    _CACHE["token_zoo"] = Prepared("token_zoo", g, ints, [ref[o] for o in g.outputs])
    return _CACHE["token_zoo"]


def _get(name: str) -> Prepared:
    return {"broadcast_add": broadcast_add, "token_zoo": token_zoo}.get(name, lambda: zoo(name))()


CASES = [*ZOO, "broadcast_add", "token_zoo"]


@pytest.mark.parametrize("name", CASES)
def test_host_bit_exact_with_sanitizers(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = _get(name)
    arts = emit(p, tmp_path)
    for opts in ({}, {"sanitize": True}):
        runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, opts)
        assert_bit_exact(p, runs[0].outputs, where=str(opts))


def test_kernels_cover_every_op_kind(tmp_path: Path) -> None:
    files = set()
    for name in CASES:
        files |= {a.name for a in emit(_get(name), tmp_path / name)}
    from edgeq.targets.c.cheaders import KERNEL_DIR
    from edgeq.targets.c.lower import kernel_files
    every = kernel_files()              # edgeq_add_broadcast.c included
    # edgeq_copy.c: only a reshape that cannot alias (planner tests) or a duplicated output
    assert every - files == {"edgeq_copy.c"}, "kernels no model of this module runs"
    assert {p.name for p in KERNEL_DIR.glob("*.c")} == every


def test_every_int8_lowering_is_checked_against_the_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generation checks each parameter struct a lowering fills against the kernel headers
    (missing or unknown members fail); the models of this module call every int8 kernel that
    takes a struct, so every int8 entry of the lowering table passes that check here."""
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
    for name in CASES:
        generate(_get(name).graph, name)
    wanted = {k.function for e in LOWERINGS.values() for k in e.kernels if k.params}
    assert wanted - checked == set(), "int8 kernels no model of this module fills a struct for"


def test_every_kernel_compiles_strictly_on_both_compilers(tmp_path: Path) -> None:
    """Each kernel file alone, with the strict flags of the profiles (-Werror -pedantic)."""
    from edgeq.targets.c.cheaders import KERNEL_DIR
    require_host_cc()
    compilers = [["gcc", *load_profile("host-c").raw["compiler"]["cflags"]]]
    if shutil.which("arm-none-eabi-gcc"):
        m4 = load_profile("cortex-m4").raw["compiler"]
        compilers.append([m4["cc"], *m4["cflags"]])
    else:
        require_cross_tools()
    for cc in compilers:
        assert {"-Werror", "-pedantic", "-std=c99"} <= set(cc)
        for src in sorted(KERNEL_DIR.glob("*.c")):
            proc = subprocess.run([*cc, "-Wshadow", "-Wconversion", f"-I{KERNEL_DIR}", "-c", str(src),
                                   "-o", str(tmp_path / "k.o")], capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr, f"{cc[0]} {src.name}:\n{proc.stderr}"


def test_multi_output_api(tmp_path: Path) -> None:
    p = zoo("softmax_transpose_zoo")
    emit(p, tmp_path)
    h = (tmp_path / "c" / "softmax_transpose_zoo.h").read_text()
    for i in range(3):
        assert f"SOFTMAX_TRANSPOSE_ZOO_OUTPUT{i}_SIZE" in h and f"SOFTMAX_TRANSPOSE_ZOO_OUTPUT{i}_OFFSET" in h
        assert f"SOFTMAX_TRANSPOSE_ZOO_OUTPUT{i}_SCALE" in h
    assert "#define SOFTMAX_TRANSPOSE_ZOO_OUTPUT_SIZE 720" in h


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_cortex_m4_qemu_bit_exact(name: str, tmp_path: Path) -> None:
    require_cross_tools()
    p = _get(name)
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("cortex-m4"), p.inputs, None, {})
    assert_bit_exact(p, runs[0].outputs, where="(Cortex-M4 under QEMU)")


def test_two_models_link_into_one_program(tmp_path: Path) -> None:
    """Different names: both models in one executable, kernels compiled once (the union)."""
    require_host_cc()
    a, b = zoo("conv_pool_zoo"), zoo("two_inputs")
    arts_a = emit(a, tmp_path / "a", "first")
    arts_b = emit(b, tmp_path / "b", "second")
    kernels: dict[str, Path] = {}
    for art in arts_a + arts_b:
        if art.name.startswith("edgeq_") and art.suffix == ".c":
            if art.name in kernels:
                assert kernels[art.name].read_bytes() == art.read_bytes()
            kernels.setdefault(art.name, art)
    model_srcs = [x for x in arts_a + arts_b if x.suffix == ".c" and not x.name.startswith("edgeq_")]
    main = tmp_path / "main.c"
    xa, xb = a.inputs[0][0].reshape(-1), np.concatenate([x[0].reshape(-1) for x in b.inputs])
    main.write_text(
        '#include <stdio.h>\n#include "first.h"\n#include "second.h"\n'
        f"static const int8_t xa[FIRST_INPUT_SIZE] = {{{', '.join(map(str, xa))}}};\n"
        f"static const int8_t xb[SECOND_INPUT_SIZE] = {{{', '.join(map(str, xb))}}};\n"
        "int main(void) {\n  int8_t ya[FIRST_OUTPUT_SIZE], yb[SECOND_OUTPUT_SIZE]; int i;\n"
        "  if (first_invoke(xa, ya) || second_invoke(xb, yb)) return 1;\n"
        '  for (i = 0; i < FIRST_OUTPUT_SIZE; ++i) printf("%d ", ya[i]);\n  printf("\\n");\n'
        '  for (i = 0; i < SECOND_OUTPUT_SIZE; ++i) printf("%d ", yb[i]);\n  printf("\\n");\n'
        "  return 0;\n}\n")
    exe = tmp_path / "both"
    cmd = ["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
           f"-I{tmp_path / 'a' / 'c'}", f"-I{tmp_path / 'b' / 'c'}",
           *map(str, model_srcs), *map(str, kernels.values()), str(main), "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [int(v) for v in out[0].split()] == a.reference[0][0].reshape(-1).tolist()
    assert [int(v) for v in out[1].split()] == b.reference[0][0].reshape(-1).tolist()


def test_first_mismatch_names_the_layer(tmp_path: Path) -> None:
    require_host_cc()
    p = zoo("conv_pool_zoo")
    arts = emit(p, tmp_path)
    sample = [x[:1] for x in p.inputs]
    profile = load_profile("host-c")
    ref = interpreter.run(p.graph, sample, keep=True)
    assert "no layer differs" in c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})
    bad = p.graph.copy()                      # a reference that disagrees from layer 2 on
    node = bad.nodes[2]
    w = bad.t(node.inputs[1])
    w.data = w.data.copy()
    w.data[...] = -w.data
    ref = interpreter.run(bad, sample, keep=True)
    msg = c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})
    assert f"node '{node.name}'" in msg and node.op in msg


def test_first_mismatch_with_an_int32_output(tmp_path: Path) -> None:
    require_host_cc()
    p = zoo("heads_zoo")
    arts = emit(p, tmp_path)
    sample = [x[:1] for x in p.inputs]
    profile = load_profile("host-c")
    ref = interpreter.run(p.graph, sample, keep=True)
    assert "no layer differs" in c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})
    argmax = next(n for n in p.graph.nodes if n.op == "argmax")
    ref[argmax.outputs[0]] = ref[argmax.outputs[0]] + 1          # indices that disagree
    assert f"node '{argmax.name}' (op argmax" in c_target.first_mismatch(p.graph, arts, profile, sample, ref, {})


def _random_conv_stack(seed: int) -> tuple[nn.Module, tuple[int, int, int]]:
    """Three random conv layers (kernel, stride, padding, dilation, groups, depthwise with a
    multiplier) plus a random pool, on a small random input shape."""
    rng = np.random.default_rng(seed)
    layers: list[nn.Module] = []
    c = int(rng.integers(1, 7))
    h, w = int(rng.integers(5, 13)), int(rng.integers(5, 13))
    shape = (c, h, w)
    for _ in range(3):
        k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(0, k[0] + 1)), int(rng.integers(0, k[1] + 1)))
        kind = rng.choice(["dense", "grouped", "depthwise"])
        if kind == "depthwise":
            groups, out = c, c * int(rng.integers(1, 3))
        elif kind == "grouped" and c % 2 == 0:
            groups, out = 2, 2 * int(rng.integers(1, 5))
        else:
            groups, out = 1, int(rng.integers(1, 10))
        eff_h, eff_w = d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1
        if h + 2 * pad[0] < eff_h or w + 2 * pad[1] < eff_w:
            continue
        layers.append(nn.Conv2d(c, out, k, s, pad, d, groups))
        if rng.random() < 0.5:
            layers.append(nn.ReLU6())
        c = out
        h = (h + 2 * pad[0] - eff_h) // s[0] + 1
        w = (w + 2 * pad[1] - eff_w) // s[1] + 1
    if h >= 2 and w >= 2:
        layers.append(nn.MaxPool2d(2, 1, 1) if rng.random() < 0.5 else nn.AvgPool2d(2, 1, 1, count_include_pad=False))
    return nn.Sequential(*layers).eval(), shape


@pytest.mark.parametrize("seed", range(6))
def test_random_conv_configurations(seed: int, tmp_path: Path) -> None:
    require_host_cc()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, shape = _random_conv_stack(seed)
    rng = np.random.default_rng(seed)
    cal = [rng.standard_normal((32, *shape)).astype(np.float32)]
    ev = [rng.standard_normal((16, *shape)).astype(np.float32)]
    p = prepare_model(f"random_{seed}", model, [shape], cal, ev)
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, {"sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=f"(random conv stack {seed}: {model})")


def _random_conv_transpose(seed: int) -> tuple[nn.Module, tuple[int, int, int]]:
    """Two random transposed convolutions (kernel, stride, padding, output padding, dilation,
    groups; channel counts on and off multiples of 4) with a random activation between."""
    rng = np.random.default_rng(100 + seed)
    c = int(rng.choice([1, 2, 4, 6]))
    shape = (c, int(rng.integers(2, 7)), int(rng.integers(2, 7)))
    layers: list[nn.Module] = []
    for _ in range(2):
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        p = (int(rng.integers(0, d[0] * (k[0] - 1) // 2 + 1)), int(rng.integers(0, d[1] * (k[1] - 1) // 2 + 1)))
        op = (int(rng.integers(0, max(s[0], d[0]))), int(rng.integers(0, max(s[1], d[1]))))
        groups = int(rng.choice([g for g in (1, 2, c) if c % g == 0]))
        out = groups * int(rng.choice([1, 3, 4, 5]))
        layers.append(nn.ConvTranspose2d(c, out, k, s, p, op, groups, True, d))
        layers.append(nn.ReLU() if rng.random() < 0.5 else nn.Identity())
        c = out
    return nn.Sequential(*layers).eval(), shape


@pytest.mark.parametrize("seed", range(6))
def test_random_conv_transpose_configurations(seed: int, tmp_path: Path) -> None:
    require_host_cc()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, shape = _random_conv_transpose(seed)
    rng = np.random.default_rng(seed)
    cal = [rng.standard_normal((32, *shape)).astype(np.float32)]
    ev = [rng.standard_normal((16, *shape)).astype(np.float32)]
    p = prepare_model(f"random_transposed_{seed}", model, [shape], cal, ev)
    assert "conv_transpose2d" in {n.op for n in p.graph.nodes}
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, {"sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=f"(random transposed conv {seed}: {model})")


def _op_cases() -> dict:
    return OP_CASES


def _op_model(case: str) -> tuple[Prepared, list[str]]:
    """The prepared op test model and the ops in it the C target does not lower."""
    key = f"op:{case}"
    if key not in _CACHE:
        model, shape = _op_cases()[case]
        rng = np.random.default_rng(0)
        cal = [rng.normal(0, 1, (48, *shape)).astype(np.float32)]
        ev = [rng.normal(0, 1.5, (24, *shape)).astype(np.float32)]   # wider: saturation too
        # min/max calibration as the op tests use (cheaper than mse; the kernels see the same
        # kinds of parameters)
        _CACHE[key] = prepare_model(case, model.eval(), [shape], cal, ev, method="minmax")
    p = _CACHE[key]
    return p, sorted({n.op for n in p.graph.nodes} - set(c_target.SUPPORTED_OPS))


@pytest.mark.parametrize("case", sorted(_op_cases()))
def test_single_op_models(case: str, tmp_path: Path) -> None:
    """Every op test model: bit-exact on host gcc (plain, and with sanitizers) when the C target
    lowers all its ops, else a clear UnsupportedOpError naming the op and pointing to
    `edgeq targets --ops` (never wrong code)."""
    from edgeq.errors import UnsupportedOpError
    require_host_cc()
    p, unsupported = _op_model(case)
    if unsupported:
        with pytest.raises(UnsupportedOpError, match="|".join(unsupported)) as info:
            emit(p, tmp_path)
        assert "edgeq targets --ops" in str(info.value)
        return
    arts = emit(p, tmp_path)
    for opts in ({}, {"sanitize": True}):
        runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, opts)
        assert_bit_exact(p, runs[0].outputs, where=f"(op model {case}, {opts or 'plain -O2'})")


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(_op_cases()))
def test_single_op_models_on_cortex_m4(case: str, tmp_path: Path) -> None:
    require_cross_tools()
    p, unsupported = _op_model(case)
    if unsupported:
        pytest.skip(f"the C target does not lower {', '.join(unsupported)} yet")
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("cortex-m4"), p.inputs, None, {})
    assert_bit_exact(p, runs[0].outputs, where=f"(op model {case}, Cortex-M4 under QEMU)")
