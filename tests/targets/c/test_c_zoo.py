"""C target on the issue-7 zoo (examples/zoo.py): every model bit-exact with the integer
reference on host gcc (plain and under ASan + UBSan) and on a Cortex-M4 under QEMU, with its
instructions per inference, arena and flash recorded (``record_property``) and the memory report
within the cortex-m4 budget (QEMU runs are marked slow; they still run in CI)."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest

from c_target_helpers import (Prepared, assert_bit_exact, emit, prepare_model, require_cross_tools,
                              require_host_cc)
from edgeq.targets import load_profile
from edgeq.targets import c as c_target

zoo = pytest.importorskip("examples.zoo")

N_CAL = 64
N_EVAL = 24          # every sample runs on the host and under QEMU (>= 20)
N_SANITIZE = 6


@functools.lru_cache(maxsize=None)
def zoo_model(name: str) -> Prepared:
    """The zoo model quantized as a cortex-m4 build quantizes it, in the C target's NHWC form."""
    factory, shape = zoo.ZOO[name]
    return prepare_model(name, factory(), [shape], [zoo.zoo_data(name, N_CAL, 0)],
                         [zoo.zoo_data(name, N_EVAL, 1)], quantizer=load_profile("cortex-m4").quantizer)


NAMES = sorted(zoo.ZOO)


@pytest.mark.parametrize("name", NAMES)
def test_zoo_host_bit_exact(name: str, tmp_path: Path, record_property) -> None:
    require_host_cc()
    p = zoo_model(name)
    assert sorted({n.op for n in p.graph.nodes} - set(c_target.SUPPORTED_OPS)) == []
    arts = emit(p, tmp_path)
    profile = load_profile("host-c")
    runs = c_target.run(p.graph, arts, profile, p.inputs, None, {})
    assert runs[0].extra["samples"] == N_EVAL
    assert_bit_exact(p, runs[0].outputs, where="(host gcc)")
    runs = c_target.run(p.graph, arts, profile, [x[:N_SANITIZE] for x in p.inputs], None, {"sanitize": True})
    assert_bit_exact(p, runs[0].outputs, n=N_SANITIZE, where="(gcc -fsanitize=address,undefined)")
    record_property("ops", ",".join(sorted({n.op for n in p.graph.nodes})))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_zoo_cortex_m4_qemu_bit_exact(name: str, tmp_path: Path, record_property) -> None:
    require_cross_tools()
    p = zoo_model(name)
    arts = emit(p, tmp_path)
    profile = load_profile("cortex-m4")
    runs = c_target.run(p.graph, arts, profile, p.inputs, None, {})
    assert_bit_exact(p, runs[0].outputs, where="(Cortex-M4 under QEMU)")
    extra = runs[0].extra
    assert extra["samples"] == N_EVAL >= 20
    assert extra["instructions_per_inference"] > 0
    mem = c_target.memory(p.graph, arts, profile, {})      # raises over the budget
    assert mem["ram_bytes"] == mem["arena_bytes"] >= mem["arena_overlap_bound_bytes"]
    assert mem["flash_bytes"] <= profile.budget["flash_bytes"]
    assert mem["ram_with_io_bytes"] <= profile.budget["ram_bytes"]
    for key in ("instructions_per_inference", "instructions_min", "instructions_max", "macs"):
        record_property(key, extra[key])
    for key in ("arena_bytes", "arena_lower_bound_bytes", "arena_overlap_bound_bytes", "flash_bytes",
                "weights_bytes", "code_bytes", "stack_bytes"):
        record_property(key, mem[key])
    print(f"\n{name}: {extra['instructions_per_inference']} instructions/inference "
          f"({extra['macs']} MACs), arena {mem['arena_bytes']} B (lower bound "
          f"{mem['arena_lower_bound_bytes']}), flash {mem['flash_bytes']} B, stack {mem['stack_bytes']} B")
