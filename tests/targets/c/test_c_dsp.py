"""The matrix-product, 1x1, im2col and depthwise kernels on both of their paths: the portable C
path (host gcc), the DSP path with plain-C models of the instructions (host gcc,
-DEDGEQ_EMULATE_DSP) and, marked slow, under QEMU on the Cortex-M3 (portable), M4 and M7
(DSP) profiles; every one bit-exact with the integer reference interpreter.  Shapes are
chosen to hit the tails: odd channel counts, depths that are not multiples of 4, borders on
every side, strides, dilation, 5x5 depthwise windows, a channel count with C % 4 != 0."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from c_target_helpers import (
    Prepared,
    assert_bit_exact,
    emit,
    prepare_model,
    require_cross_tools,
    require_host_cc,
)
from torch import nn

from edgeq import interpreter
from edgeq.targets import c as c_target
from edgeq.targets import load_profile
from edgeq.targets.c.lower import conv as conv_lowering

EMULATE = ["-DEDGEQ_EMULATE_DSP"]


class DspZoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 7, 3, stride=2, padding=1)              # im2col, K = 27, odd O
        self.pw = nn.Conv2d(7, 13, 1)                                       # 1x1, depth 7
        self.dw3 = nn.Conv2d(13, 13, 3, padding=1, groups=13)              # 3x3, C % 4 = 1
        self.dw5 = nn.Conv2d(13, 13, 5, stride=2, padding=2, groups=13)    # tap table, borders
        self.dil = nn.Conv2d(13, 8, 3, padding=2, dilation=2)              # im2col, dilation
        self.wide = nn.Conv2d(8, 6, (1, 5), padding=(0, 2))                # 1-D window
        self.fc = nn.Linear(6 * 4 * 4, 5)                                  # FC, odd outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.pw(self.first(x)))
        y = torch.clamp(self.dw3(y), -1.0, 1.0)
        y = self.dil(self.dw5(y))
        return self.fc(torch.flatten(torch.relu(self.wide(y)), 1))


class Depthwise16(nn.Module):
    """Channel counts that are multiples of 4 (every pixel on the four-channel path), a 1x1
    with stride 2 (im2col, not the direct path), and a padded 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.pw = nn.Conv2d(4, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.s2 = nn.Conv2d(16, 12, 1, stride=2)
        self.pad = nn.Conv2d(12, 8, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pad(self.s2(torch.nn.functional.relu6(self.dw(self.pw(x)))))


class Stem(nn.Module):
    """One-channel convolutions (edgeq_conv2d_c1_s8), each an output of its own: 1x1, 3x3 with
    and without padding, strides, a 10x8 stride-2 window with uneven padding (micro_speech's), a
    5x3 window on the odd width, O % 4 != 0, and a 1x1 with stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(1, 4, 1),                                          # 1x1, every pixel
            nn.Conv2d(1, 8, 3, padding=1),                               # lenet's stem
            nn.Conv2d(1, 8, 3, stride=2, padding=1),                     # person_detect's stem
            nn.Conv2d(1, 8, (10, 8), stride=2, padding=(5, 3)),          # micro_speech's stem
            nn.Conv2d(1, 7, (5, 3), stride=(1, 2), padding=(2, 0)),      # odd width, O % 4 = 3
            nn.Conv2d(1, 5, 3),                                          # no padding, O % 4 = 1
            nn.Conv2d(1, 6, (1, 5), stride=(2, 1), padding=(0, 4)),      # wide padding, O % 4 = 2
            nn.Conv2d(1, 3, 1, stride=2),                                # 1x1 stride 2
        ])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.relu(c(x)) if i % 2 else c(x) for i, c in enumerate(self.convs))


class Depthwise3x3(nn.Module):
    """3x3 depthwise layers on 4-channel groups: stride 1 runs of interior pixels (no clamp),
    dilation 2 (border masks two taps wide), stride 2 down to 2 x 2 (every pixel on the
    border, missing a row and a column), and an odd channel count."""

    def __init__(self) -> None:
        super().__init__()
        self.s1 = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dil = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.s2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.tiny = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
        self.edge = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 5, 1)
        self.odd = nn.Conv2d(5, 5, 3, padding=1, groups=5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.dil(self.s1(x)))
        y = self.edge(self.tiny(self.s2(y)))
        return self.odd(self.pw(y))


def _prepared(model: nn.Module, shape: tuple[int, ...], seed: int) -> Prepared:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cal = rng.standard_normal((32, *shape)).astype(np.float32)
    ev = rng.standard_normal((24, *shape)).astype(np.float32)
    return prepare_model(type(model).__name__, model.eval(), [shape], [cal], [ev])


@pytest.fixture(scope="module")
def models() -> dict[str, Prepared]:
    torch.manual_seed(0)
    return {"dsp_zoo": _prepared(DspZoo(), (3, 16, 16), 1), "depthwise16": _prepared(Depthwise16(), (4, 12, 12), 2),
            "stem": _prepared(Stem(), (1, 13, 11), 3), "depthwise3x3": _prepared(Depthwise3x3(), (8, 7, 9), 3)}


@pytest.mark.parametrize("flags", [[], EMULATE], ids=["portable", "dsp-emulated"])
@pytest.mark.parametrize("name", ["dsp_zoo", "depthwise16", "stem", "depthwise3x3"])
def test_both_paths_bit_exact_on_host(models: dict[str, Prepared], name: str, flags: list[str],
                                      tmp_path: Path) -> None:
    require_host_cc()
    p = models[name]
    arts = emit(p, tmp_path, p.name)
    source = "\n".join(a.read_text() for a in arts if a.name == f"{p.name}.c")
    for kernel in ("edgeq_conv2d_im2col_s8", "edgeq_conv2d_1x1_s8", "edgeq_depthwise_conv2d_opt_s8"):
        if name == "dsp_zoo":
            assert f"{kernel}(" in source, f"{kernel} not used: the test no longer covers it"
    if name == "depthwise3x3":     # the 3x3 kernel on the 8-channel layers, the general one on 5
        assert source.count("edgeq_depthwise_conv2d_3x3_s8(") == 5, "the 3x3 kernel lost a layer"
        assert source.count("edgeq_depthwise_conv2d_opt_s8(") == 1, "the 5-channel layer left the general kernel"
    if name == "stem":
        assert source.count("edgeq_conv2d_c1_s8(") == len(Stem().convs), "a one-channel conv left the c1 kernel"
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None,
                        {"extra_cflags": flags, "sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=" ".join(flags) or "portable")


@pytest.mark.parametrize("flags", [[], EMULATE], ids=["portable", "dsp-emulated"])
def test_one_channel_layers_without_fast_requantization(models: dict[str, Prepared], flags: list[str],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where edgeq_requantize_fast() is not proven exact (the generator made to prove nothing)
    the one-channel layers leave the c1 kernel, which has no exact output stage, for the
    general conv kernel (as the 1x1 and im2col ones would: theirs is the fast one only) and
    stay bit-exact."""
    require_host_cc()
    monkeypatch.setattr(conv_lowering, "FAST_ACC_LIMIT", 0)
    p = models["stem"]
    arts = emit(p, tmp_path, p.name)
    source = "\n".join(a.read_text() for a in arts if a.name == f"{p.name}.c")
    assert "edgeq_conv2d_c1_s8(" not in source
    assert "edgeq_conv2d_im2col_s8(" not in source and "edgeq_conv2d_1x1_s8(" not in source
    assert source.count("edgeq_conv2d_s8(") == len(Stem().convs)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None,
                        {"extra_cflags": flags, "sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=" ".join(flags) or "portable")


@pytest.mark.parametrize("flags", [[], EMULATE], ids=["portable", "dsp-emulated"])
def test_exact_requantization_paths_bit_exact(models: dict[str, Prepared], flags: list[str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With edgeq_requantize_fast() proven exact nowhere, the zoo's convolutions take the
    general kernel, its depthwise and fully connected layers their out-of-line exact output
    stage: bit-exact."""
    require_host_cc()
    monkeypatch.setattr(conv_lowering, "FAST_ACC_LIMIT", 0)
    p = models["dsp_zoo"]
    arts = emit(p, tmp_path, p.name)
    source = "\n".join(a.read_text() for a in arts if a.name == f"{p.name}.c")
    assert set(re.findall(r"\.fast_requant\s*=\s*(\d)", source)) == {"0"}
    assert "edgeq_fully_connected_s8(" in source, "the FC layer left its kernel: the test no longer covers it"
    assert "edgeq_depthwise_conv2d_opt_s8(" in source and "edgeq_conv2d_s8(" in source
    assert "edgeq_conv2d_im2col_s8(" not in source and "edgeq_conv2d_1x1_s8(" not in source
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None,
                        {"extra_cflags": flags, "sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=" ".join(flags) or "portable")


def test_scratch_is_planned_in_the_arena(models: dict[str, Prepared]) -> None:
    """Every 1x1 / im2col layer has a scratch buffer in the arena, live at its own step only,
    overlapping no activation live then, and the plan's lower bound counts it."""
    p = models["dsp_zoo"]
    plan = c_target.model_plan(p.graph)
    scratch = {n: t for n, t in plan.tensors.items() if n.endswith("/scratch")}
    convs = [n for n in p.graph.nodes if n.op == "conv2d"]
    assert len(scratch) == len(convs)
    for name, s in scratch.items():
        assert s.region == "arena" and s.first == s.last and s.offset % 4 == 0
        for other, t in plan.tensors.items():
            if other == name or t.region != "arena" or not (t.first <= s.first <= t.last):
                continue
            assert s.offset + s.size <= t.offset or t.offset + t.size <= s.offset, (name, other)
    assert plan.lower_bound >= max(s.size for s in scratch.values())


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["cortex-m3", "cortex-m4", "cortex-m7"])
def test_bit_exact_under_qemu(models: dict[str, Prepared], profile: str, tmp_path: Path) -> None:
    require_cross_tools()
    prof = load_profile(profile)
    for name, p in models.items():
        arts = c_target.emit(p.graph, tmp_path / name, prof, {"name": p.name})
        runs = c_target.run(p.graph, arts, prof, p.inputs, None, {})
        assert_bit_exact(p, runs[0].outputs, where=profile)
        assert runs[0].extra["instructions_per_inference"] > 0


@pytest.mark.slow
def test_layer_profile_adds_up_to_the_measured_total(models: dict[str, Prepared], tmp_path: Path) -> None:
    """The per-layer counts (marks after every layer of a profile build) add up to the plain
    build's count within a few instructions per layer, and each weighted layer costs at
    least one instruction per MAC (the plugin counts guest instructions, SMLAD does 2 MACs)."""
    require_cross_tools()
    p = models["dsp_zoo"]
    prof = load_profile("cortex-m4")
    arts = c_target.emit(p.graph, tmp_path, prof, {"name": p.name})
    total = c_target.run(p.graph, arts, prof, [x[:1] for x in p.inputs], None, {})[0].extra[
        "instructions_per_inference"]
    profile = c_target.layer_profile(p.graph, arts, prof, p.inputs, {}, total)
    assert [r["layer"] for r in profile["rows"]] == list(range(len(p.graph.nodes)))
    assert abs(profile["invoke_overhead_instructions"]) <= 4 * len(p.graph.nodes)
    for r in profile["rows"]:
        if r["macs"]:
            assert r["instructions"] >= r["macs"] / 2, r


class AddPair(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def _add_every_pair(scale2: float) -> Prepared:
    """An int8 add of two activations evaluated on every pair of int8 values (65,536 elements):
    the fast path of edgeq_add_s8 against the reference on its whole domain."""
    rng = np.random.default_rng(4)
    shape = (1, 256, 256)
    cal = [rng.standard_normal((8, *shape)).astype(np.float32),
           scale2 * rng.standard_normal((8, *shape)).astype(np.float32)]
    base = prepare_model(f"add_pairs_{scale2:g}".replace(".", "_"), AddPair().eval(), [shape, shape], cal,
                         [c[:1] for c in cal])
    values = np.arange(-128, 128, dtype=np.int8)
    x1 = np.tile(values, 256).reshape(base.inputs[0][:1].shape)
    x2 = np.repeat(values, 256).reshape(base.inputs[1][:1].shape)
    ref = interpreter.run(base.graph, [x1, x2])
    return Prepared(base.name, base.graph, [x1, x2], [ref[o] for o in base.graph.outputs])


@pytest.mark.parametrize("flags", [[], EMULATE], ids=["portable", "dsp-emulated"])
@pytest.mark.parametrize("scale2", [3.0, 1.0])
def test_fast_add_bit_exact_on_every_input_pair(scale2: float, flags: list[str], tmp_path: Path) -> None:
    """Different input scales (one input rescaled by (2^30, 0), the other by a multiplier) and
    equal ones (both (2^30, 0)): the generator takes the fast path, bit-exact on all pairs."""
    require_host_cc()
    p = _add_every_pair(scale2)
    arts = emit(p, tmp_path, p.name)
    source = "\n".join(a.read_text() for a in arts if a.name == f"{p.name}.c")
    assert "edgeq_add_s8(" in source and ".fast" in source and re.search(r"\.fast\s*=\s*1", source)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None,
                        {"extra_cflags": flags, "sanitize": True})
    assert_bit_exact(p, runs[0].outputs, where=" ".join(flags) or "portable")


@pytest.mark.slow
def test_fast_add_bit_exact_under_qemu(tmp_path: Path) -> None:
    require_cross_tools()
    p = _add_every_pair(3.0)
    prof = load_profile("cortex-m4")
    arts = c_target.emit(p.graph, tmp_path, prof, {"name": p.name})
    runs = c_target.run(p.graph, arts, prof, p.inputs, None, {})
    assert_bit_exact(p, runs[0].outputs, where="cortex-m4")
