"""C target on the real-model zoo (examples/sequence_zoo.py: GRU / LSTM, keyword transformer,
BERT-style encoder with int64 token ids and mask, L2-normalised embeddings, a 1-D CNN): every
model bit-exact with the integer reference on host gcc and on a Cortex-M4 under QEMU, with its
instructions per inference, arena and flash recorded.  Larger end-to-end tests: marked slow."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import torch

from c_target_helpers import Prepared, assert_bit_exact, emit, require_cross_tools, require_host_cc, to_graph_layout
from edgeq import interpreter, pipeline
from edgeq.errors import EdgeqError
from edgeq.targets import load_profile
from edgeq.targets import c as c_target

seq = pytest.importorskip("examples.sequence_zoo")

N_CAL = 64
N_EVAL = 24
NAMES = sorted(seq.SEQUENCE_ZOO)


@functools.lru_cache(maxsize=None)
def sequence_model(name: str) -> Prepared:
    """The zoo model exported with its own input types (int64 ids and masks stay integers),
    quantized with the cortex-m4 profile's quantizer, in the C target's NHWC form."""
    factory, specs = seq.SEQUENCE_ZOO[name]
    example = tuple(torch.zeros((1, *shape), dtype=getattr(torch, dtype)) for shape, dtype, _ in specs)
    ep = torch.export.export(factory().eval(), example)
    q = pipeline.quantized_graph(pipeline.float_graph(ep), seq.sequence_data(name, N_CAL, 0),
                                 options=load_profile("cortex-m4").quantizer)
    g = c_target.prepare(q, load_profile("host-c"), {})
    ints = [interpreter.quantize_input(g, i, to_graph_layout(g, i, x), c_target.input_rounding)
            for i, x in enumerate(seq.sequence_data(name, N_EVAL, 1))]
    ref = interpreter.run(g, ints)
    return Prepared(name, g, ints, [ref[o] for o in g.outputs])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_sequence_zoo_host_bit_exact(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = sequence_model(name)
    assert sorted({n.op for n in p.graph.nodes} - set(c_target.SUPPORTED_OPS)) == []
    arts = emit(p, tmp_path)
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, {})
    assert runs[0].extra["samples"] == N_EVAL
    assert_bit_exact(p, runs[0].outputs, where="(host gcc)")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_sequence_zoo_cortex_m4_qemu_bit_exact_or_over_budget(name: str, tmp_path: Path, record_property) -> None:
    """Bit-exact under QEMU within the cortex-m4 budget, or (a model too big for its 1 MiB of
    flash) refused by the memory report with a message naming both numbers."""
    require_cross_tools()
    p = sequence_model(name)
    arts = emit(p, tmp_path)
    profile = load_profile("cortex-m4")
    try:
        mem = c_target.memory(p.graph, arts, profile, {})
    except EdgeqError as e:
        msg = str(e)
        need = re.search(r"needs (\d+) bytes of flash", msg)
        assert need and f"over the {profile.budget['flash_bytes']}-byte flash budget" in msg, msg
        assert int(need.group(1)) > profile.budget["flash_bytes"]
        record_property("over_budget", msg)
        return
    runs = c_target.run(p.graph, arts, profile, p.inputs, None, {})
    assert_bit_exact(p, runs[0].outputs, where="(Cortex-M4 under QEMU)")
    extra = runs[0].extra
    assert extra["samples"] == N_EVAL and extra["instructions_per_inference"] > 0
    assert mem["flash_bytes"] <= profile.budget["flash_bytes"]
    for key in ("instructions_per_inference", "macs"):
        record_property(key, extra[key])
    for key in ("arena_bytes", "flash_bytes", "weights_bytes", "code_bytes", "stack_bytes"):
        record_property(key, mem[key])
    print(f"\n{name}: {extra['instructions_per_inference']} instructions/inference ({extra['macs']} MACs), "
          f"arena {mem['arena_bytes']} B, flash {mem['flash_bytes']} B")
