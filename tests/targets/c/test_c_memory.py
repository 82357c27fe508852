"""The C target's memory options: the input kept in the arena (``NAME_input()`` / ``NAME_run()``,
the classic ``NAME_invoke`` still working), outputs overlapping consumed inputs, bit-exact on
host gcc (strict warnings, ASan + UBSan) and on a Cortex-M4 under QEMU (slow: the TFLite Micro
twins, with the RAM targets of issue 15)."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import numpy as np
import pytest

from c_target_helpers import Prepared, assert_bit_exact, example, prepare_model, require_cross_tools, require_host_cc
from edgeq.targets import load_profile
from edgeq.targets import c as c_target
from edgeq.targets.c.cheaders import kernel
from edgeq.targets.c.emit import model_plan
from edgeq.targets.c.lower import allows_overlap
from edgeq.targets.c.lower.conv import CONV2D, DEPTHWISE, FULLY_CONNECTED
from examples.models import MODELS

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
ARENA = {"input_in_arena": True}


def _emit(p: Prepared, out: Path, options: dict) -> list[Path]:
    return c_target.emit(p.graph, out, load_profile("host-c"), {"name": p.name, **options})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_input_in_arena_bit_exact_on_host(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example(name)
    arts = _emit(p, tmp_path, ARENA)
    header = (tmp_path / "c" / f"{name}.h").read_text()
    assert f"#define {name.upper()}_INPUT_IN_ARENA 1" in header
    assert f"int8_t *{name}_input(void);" in header and f"int {name}_run(int8_t *output);" in header
    opts = {**ARENA, "extra_cflags": STRICT}
    runs = c_target.run(p.graph, arts, load_profile("host-c"), p.inputs, None, opts)
    assert_bit_exact(p, runs[0].outputs, where="(host gcc, input in the arena)")
    runs = c_target.run(p.graph, arts, load_profile("host-c"), [x[:6] for x in p.inputs], None,
                        {**ARENA, "sanitize": True})
    assert_bit_exact(p, runs[0].outputs, n=6, where="(ASan + UBSan, input in the arena)")
    mem = c_target.memory(p.graph, arts, load_profile("host-c"), ARENA)
    classic = c_target.memory(p.graph, _emit(p, tmp_path / "classic", {}), load_profile("host-c"), {})
    assert mem["input_in_arena"] and not classic["input_in_arena"]
    assert mem["ram_model_bytes"] == mem["arena_bytes"] + mem["output_bytes"]
    assert classic["ram_model_bytes"] == classic["arena_bytes"] + classic["input_bytes"] + classic["output_bytes"]
    assert mem["ram_model_bytes"] <= classic["ram_model_bytes"]
    assert len(mem["timeline"]["live_bytes"]) == len(p.graph.nodes) + 2


RUNNER = """\
#include <stdio.h>
#include "{name}.h"
/* the classic call on a model built with its input in the arena: every sample from a caller's buffer */
int main(int argc, char **argv)
{{
    static int8_t x[{upper}_INPUT_SIZE], y[{upper}_OUTPUT_SIZE];
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    (void)argc;
    while (fread(x, 1, sizeof x, in) == sizeof x) {{
        if ({name}_invoke(x, y) != 0 || fwrite(y, 1, sizeof y, out) != sizeof y) {{
            return 1;
        }}
    }}
    fclose(in);
    return fclose(out) != 0;
}}
"""


@pytest.mark.parametrize("name", ["mobilenet_v1_025", "ds_cnn"])
def test_classic_invoke_still_works_with_the_input_in_the_arena(name: str, tmp_path: Path) -> None:
    require_host_cc()
    p = example(name)
    arts = _emit(p, tmp_path, ARENA)
    runner = tmp_path / "runner.c"
    runner.write_text(RUNNER.format(name=name, upper=name.upper()))
    exe = tmp_path / "runner"
    subprocess.run(["gcc", "-O2", *STRICT, f"-I{tmp_path / 'c'}", *map(str, [a for a in arts if a.suffix == ".c"]),
                    str(runner), "-o", str(exe)], check=True, capture_output=True)
    x = np.ascontiguousarray(p.inputs[0].astype(np.int8))
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], check=True, timeout=120)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype=np.int8).reshape(p.reference[0].shape)
    assert_bit_exact(p, [got], where="(NAME_invoke, input in the arena)")


def test_overlap_needs_kernels_without_restrict() -> None:
    assert CONV2D.overlap_safe and DEPTHWISE.overlap_safe and FULLY_CONNECTED.overlap_safe
    assert not kernel("edgeq_transpose_s8", "edgeq_transpose.c").overlap_safe   # restrict output
    g = example("mobilenet_v1_025").graph
    window = [n for n in g.nodes if n.op in ("conv2d", "depthwise_conv2d")]
    assert window and all(allows_overlap(n, g) for n in window)
    assert c_target.model_plan(g, kernel_allows=lambda node: False).overlaps == {}
    overlapped = set(model_plan(g).overlaps)
    assert overlapped and overlapped <= {n.name for n in window} | {n.name for n in g.nodes if n.op == "linear"}


# --------------------------------------------------------------------------- the TFLM twins

#: RAM (arena with the input inside, plus the output). person_detect: issue 15's target, 0.5x
#: TFLite Micro's arena for its own model (82,308 B). micro_speech: issue 15 asks 4,443 B (0.65x
#: of 6,836 B); the one-channel kernel's 80 B window scratch at the first conv (the peak, where
#: im2col's two int16 columns took 316 B) gives the measured 4,292 B, guarded here
RAM_TARGETS = {"person_detect": 41_154, "micro_speech": 4_292}


@functools.lru_cache(maxsize=None)
def twin(name: str) -> Prepared:
    from examples.mcu_twins import TWINS, twin_data
    factory, shape = TWINS[name]
    return prepare_model(name, factory(), [shape], [twin_data(name, 16, 0)], [twin_data(name, 8, 1)],
                         quantizer=load_profile("cortex-m4").quantizer, method="minmax")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RAM_TARGETS))
def test_twin_ram_target_and_bit_exact_on_the_m4(name: str, tmp_path: Path, record_property) -> None:
    require_cross_tools()
    p = twin(name)
    profile = load_profile("cortex-m4")
    arts = c_target.emit(p.graph, tmp_path, profile, {"name": name, **ARENA})
    mem = c_target.memory(p.graph, arts, profile, ARENA)
    assert mem["ram_bytes"] == mem["arena_bytes"]          # the arena is the model's only writable memory
    assert mem["ram_with_io_bytes"] == mem["arena_bytes"] + mem["output_bytes"] <= RAM_TARGETS[name]
    runs = c_target.run(p.graph, arts, profile, p.inputs, None, ARENA)
    assert_bit_exact(p, runs[0].outputs, where="(Cortex-M4 under QEMU, input in the arena)")
    record_property("ram_bytes", mem["ram_with_io_bytes"])
    record_property("instructions", runs[0].extra["instructions_per_inference"])


def test_16x8_model_with_the_input_in_the_arena_bit_exact_on_host(tmp_path: Path) -> None:
    require_host_cc()
    from edgeq import interpreter, pipeline
    from edgeq.calibration import calibrate
    from edgeq.passes.precision import int16_capable, promote
    from edgeq.quantize import quantize
    from examples.models import synthetic_data
    factory, shape = MODELS["mobilenet_v1_025"]
    fg = pipeline.float_graph(factory(), [shape])
    capable = [n.outputs[0] for n in fg.nodes if int16_capable(fg, n.outputs[0])]
    q = quantize(promote(fg, capable), calibrate(fg, [synthetic_data("mobilenet_v1_025", 16, 0)], method="minmax"))
    g = c_target.prepare(q, load_profile("host-c"), {})
    x = synthetic_data("mobilenet_v1_025", 8, 1).transpose(0, 2, 3, 1)
    ints = [interpreter.quantize_input(g, 0, np.ascontiguousarray(x), c_target.input_rounding)]
    ref = interpreter.run(g, ints)
    p = Prepared("mnv1_16x8", g, ints, [ref[o] for o in g.outputs])
    plan = model_plan(g, True)
    assert any(g.t(node.outputs[0]).dtype == "int16" for node in g.nodes if node.name in plan.overlaps)
    arts = _emit(p, tmp_path, ARENA)
    runs = c_target.run(g, arts, load_profile("host-c"), ints, None, {**ARENA, "extra_cflags": STRICT})
    assert_bit_exact(p, runs[0].outputs, where="(16x8, input in the arena, host gcc)")
