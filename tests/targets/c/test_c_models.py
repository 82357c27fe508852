"""C target on every example model: bit-exact with the integer reference on host gcc (also under
ASan + UBSan) and on a Cortex-M4 under QEMU (slow), strict warnings on both compilers,
deterministic output, memory report within the cortex-m4 budget."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from c_target_helpers import (QEMU_SAMPLES, assert_bit_exact, emit, example, require_cross_tools,
                              require_host_cc)
from edgeq.errors import EdgeqError
from edgeq.targets import load_profile
from edgeq.targets import c as c_target
from examples.models import MODELS

NAMES = sorted(MODELS)
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


@pytest.mark.parametrize("name", NAMES)
def test_host_bit_exact(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example(name)
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, {})
    assert len(runs) == 1 and runs[0].must_be_exact
    assert runs[0].extra["samples"] == len(p.inputs[0])
    assert_bit_exact(p, runs[0].outputs, where="(host gcc)")


@pytest.mark.parametrize("name", NAMES)
def test_host_bit_exact_under_sanitizers(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example(name)
    arts = emit(p, tmp_path)
    n = 8
    runs = c_target.run(p.graph, arts, load_profile("host-c"), [x[:n] for x in p.inputs], None,
                        {"sanitize": True})
    assert_bit_exact(p, runs[0].outputs, n=n, where="(gcc -fsanitize=address,undefined)")


@pytest.mark.parametrize("name", NAMES)
def test_strict_warnings_on_both_compilers(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example(name)
    arts = emit(p, tmp_path)
    sources = [a for a in arts if a.suffix == ".c"]
    c_dir = sources[0].parent
    compilers = [["gcc", "-O2", *STRICT]]
    if shutil.which("arm-none-eabi-gcc"):
        m4 = load_profile("cortex-m4").raw["compiler"]
        assert set(STRICT) <= set(m4["cflags"])
        compilers.append([m4["cc"], *m4["cflags"]])
    else:
        require_cross_tools()
    for cc in compilers:
        for src in sources:
            proc = subprocess.run([*cc, f"-I{c_dir}", "-c", str(src), "-o", str(tmp_path / "x.o")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr, f"{cc[0]} {src.name}:\n{proc.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_emit_is_deterministic(name: str, tmp_path: Path) -> None:
    p = example(name)
    a = emit(p, tmp_path / "a")
    b = emit(p, tmp_path / "b")
    assert [x.name for x in a] == [y.name for y in b]
    for x, y in zip(a, b):
        assert x.read_bytes() == y.read_bytes(), x.name
    names = {x.name for x in a}
    assert {f"{name}.h", f"{name}.c", f"{name}_weights.c", "edgeq_types.h", "edgeq_support.h",
            "README.md"} <= names
    # only the kernels the model uses
    used = {n.op for n in p.graph.nodes}
    if "softmax" not in used:
        assert "edgeq_softmax.c" not in names
    if "depthwise_conv2d" not in used:
        assert "edgeq_depthwise_conv2d.c" not in names
    # one kernel call per layer, each with a comment naming the layer and its module
    src = (tmp_path / "a" / "c" / f"{name}.c").read_text()
    for node in p.graph.nodes:
        assert f"Layer {p.graph.nodes.index(node)}: {node.name} (torch module " \
               f"{node.module_path or '<top level>'})" in src


@pytest.mark.parametrize("name", NAMES)
def test_memory_report_within_cortex_m4_budget(name: str, tmp_path: Path) -> None:
    require_cross_tools()
    p = example(name)
    arts = emit(p, tmp_path)
    profile = load_profile("cortex-m4")
    mem = c_target.memory(p.graph, arts, profile, {})
    # with outputs over consumed inputs the arena may beat the bound without overlaps, never the one with them
    assert mem["arena_overlap_bound_bytes"] <= mem["arena_bytes"]
    assert mem["arena_overlap_bound_bytes"] <= mem["arena_lower_bound_bytes"]
    assert mem["ram_bytes"] == mem["arena_bytes"]          # the arena is the only writable data
    assert mem["weights_bytes"] > 0 and mem["code_bytes"] > 0
    assert mem["flash_bytes"] == mem["weights_bytes"] + mem["code_bytes"]
    assert mem["flash_bytes"] <= profile.budget["flash_bytes"]
    assert mem["ram_with_io_bytes"] <= profile.budget["ram_bytes"]
    assert f"#define {name.upper()}_ARENA_SIZE {mem['arena_bytes']}" in \
        (tmp_path / "c" / f"{name}.h").read_text()
    for t in mem["plan"].values():
        assert t["region"] in ("arena", "input", "output")


def test_budget_overflow_names_both_numbers(tmp_path: Path) -> None:
    require_cross_tools()
    p = example("lenet_digits")
    arts = emit(p, tmp_path)
    profile = load_profile("cortex-m4")
    profile.budget = {"flash_bytes": 1000, "ram_bytes": 262144}
    with pytest.raises(EdgeqError) as e:
        c_target.memory(p.graph, arts, profile, {})
    flash = c_target.memory(p.graph, arts, load_profile("cortex-m4"), {})["flash_bytes"]
    assert str(flash) in str(e.value) and "1000" in str(e.value)
    profile.budget = {"flash_bytes": 1048576, "ram_bytes": 100}
    with pytest.raises(EdgeqError, match=r"RAM.*100-byte"):
        c_target.memory(p.graph, arts, profile, {})


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_cortex_m4_qemu_bit_exact(name: str, tmp_path: Path) -> None:
    require_cross_tools()
    p = example(name)
    arts = emit(p, tmp_path)
    n = QEMU_SAMPLES
    runs = c_target.run(p.graph, arts, load_profile("cortex-m4"), [x[:n] for x in p.inputs], None, {})
    assert_bit_exact(p, runs[0].outputs, n=n, where="(Cortex-M4 under QEMU)")
    extra = runs[0].extra
    assert extra["samples"] == n >= 20
    assert extra["instructions_per_inference"] > 0
    assert extra["macs"] == c_target.model_macs(p.graph)


def test_profiles_list_the_ops_the_c_target_lowers() -> None:
    for name in ("cortex-m3", "cortex-m4", "cortex-m7", "host-c"):
        profile = load_profile(name)
        assert profile.format == "c"
        assert sorted(profile.ops) == sorted(c_target.SUPPORTED_OPS)
    budget = load_profile("cortex-m4").budget
    assert budget == {"flash_bytes": 1048576, "ram_bytes": 262144}


@pytest.mark.slow
def test_default_model_name_runs_under_qemu(tmp_path: Path) -> None:
    """`edgeq build` names the model "model" by default: its MODEL_INPUT_SIZE / MODEL_OUTPUT_SIZE
    are also the harness's macro names and must not be redefined."""
    require_cross_tools()
    p = example("mlp_digits")
    arts = emit(p, tmp_path, "model")
    runs = c_target.run(p.graph, arts, load_profile("cortex-m4"), [x[:4] for x in p.inputs], None, {})
    assert_bit_exact(p, runs[0].outputs, n=4, where="(model named 'model', Cortex-M4 under QEMU)")
