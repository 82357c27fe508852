"""Cortex-M4 + QEMU harness (edgeq.targets.c.qemu) on hand-written toy "models"."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from edgeq.targets.c import qemu

pytestmark = pytest.mark.slow


def _require_tools() -> None:
    missing = qemu.missing_tools()
    if missing:
        msg = ("Cortex-M4 toolchain / QEMU not on PATH (missing: " + ", ".join(missing)
               + "); install gcc-arm-none-eabi libnewlib-arm-none-eabi "
               "binutils-arm-none-eabi qemu-system-arm")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require_tools()
    return qemu.build_plugin(tmp_path_factory.mktemp("plugin_cache"))


def _header(name: str, in_size: int, out_size: int) -> str:
    up = name.upper()
    return (f"#ifndef {up}_H\n#define {up}_H\n#include <stdint.h>\n"
            f"#define {up}_INPUT_SIZE {in_size}\n#define {up}_OUTPUT_SIZE {out_size}\n"
            f"int {name}_invoke(const int8_t *input, int8_t *output);\n#endif\n")


# output[i] = saturate_int8(input[i] * 3 - 7); the 3 lives in .data (checks the startup
# copy), __ssat keeps the loop branch-free, so the count is data-independent.
TOY_C = """\
#include <arm_acle.h>
#include "toy.h"
int32_t toy_scale = 3;
int toy_invoke(const int8_t *input, int8_t *output)
{
    int i;
    for (i = 0; i < TOY_INPUT_SIZE; ++i) {
        output[i] = (int8_t)__ssat((int32_t)input[i] * toy_scale - 7, 8);
    }
    return 0;
}
"""

# Exactly SPIN_ITERS iterations of a 2-instruction loop (subs + bne).
SPIN_C = """\
#include "spin.h"
int spin_invoke(const int8_t *input, int8_t *output)
{
    uint32_t n = SPIN_ITERS;
    __asm__ volatile("1:\\n\\tsubs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
    output[0] = input[0];
    return 0;
}
"""

NULL_C = """\
#include "nop.h"
int nop_invoke(const int8_t *input, int8_t *output)
{
    (void)input;
    (void)output;
    return 0;
}
"""

FAIL_C = """\
#include "bad.h"
int bad_invoke(const int8_t *input, int8_t *output)
{
    output[0] = input[0];
    return 1;
}
"""


def _build(tmp: Path, name: str, header: str, source: str) -> Path:
    src_dir = tmp / "src"
    src_dir.mkdir(parents=True, exist_ok=True)
    (src_dir / f"{name}.h").write_text(header)
    (src_dir / f"{name}.c").write_text(source)
    return qemu.build_elf([src_dir / f"{name}.c"], [src_dir], name, tmp / "build", None,
                          tmp / "io" / "in.bin", tmp / "io" / "out.bin")


def _toy_reference(x: np.ndarray) -> np.ndarray:
    return np.clip(x.astype(np.int32) * 3 - 7, -128, 127).astype(np.int8)


def _build_toy(tmp: Path, size: int) -> Path:
    return _build(tmp, "toy", _header("toy", size, size), TOY_C)


def test_toy_outputs_and_counts(tmp_path: Path, plugin: Path) -> None:
    size = 16
    elf = _build_toy(tmp_path / "toy16", size)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(25, size), dtype=np.int8)
    x[0] = np.arange(-128, 128, 16, dtype=np.int8)  # hit both saturation limits

    out, counts = qemu.run_qemu(elf, x, size, None, timeout=60, plugin=plugin)
    assert out.dtype == np.int8 and out.shape == (25, size)
    np.testing.assert_array_equal(out, _toy_reference(x))
    assert len(counts) == 25
    assert len(set(counts)) == 1, counts  # data-independent loop
    assert 8 * size <= counts[0] <= 8 * size + 40

    out2, counts2 = qemu.run_qemu(elf, x, size, None, timeout=60, plugin=plugin)
    np.testing.assert_array_equal(out2, out)
    assert counts2 == counts  # deterministic run to run

    # Loop length doubled: the count roughly doubles (same fixed overhead).
    elf32 = _build_toy(tmp_path / "toy32", 2 * size)
    x32 = rng.integers(-128, 128, size=(3, 2 * size), dtype=np.int8)
    out32, counts32 = qemu.run_qemu(elf32, x32, 2 * size, None, timeout=60, plugin=plugin)
    np.testing.assert_array_equal(out32, _toy_reference(x32))
    assert len(set(counts32)) == 1
    assert 1.7 < counts32[0] / counts[0] < 2.1, (counts[0], counts32[0])


def test_counts_are_exact(tmp_path: Path, plugin: Path) -> None:
    def spin_count(iters: int) -> int:
        header = _header("spin", 4, 4).replace(
            "#define SPIN_INPUT_SIZE", f"#define SPIN_ITERS {iters}u\n#define SPIN_INPUT_SIZE")
        elf = _build(tmp_path / f"spin{iters}", "spin", header, SPIN_C)
        x = np.arange(12, dtype=np.int8).reshape(3, 4)
        out, counts = qemu.run_qemu(elf, x, 4, None, timeout=60, plugin=plugin)
        assert out[:, 0].tolist() == x[:, 0].tolist()
        assert len(set(counts)) == 1, counts
        return counts[0]

    # 100 more iterations of subs+bne: exactly 200 more instructions.
    assert spin_count(200) - spin_count(100) == 200

    # Empty model: only the harness's constant overhead (bench_start's return, argument
    # set-up, the two calls, invoke's `movs r0, #0; bx lr`...): small and constant.
    elf = _build(tmp_path / "nop", "nop", _header("nop", 8, 8), NULL_C)
    x = np.zeros((4, 8), dtype=np.int8)
    _, counts = qemu.run_qemu(elf, x, 8, None, timeout=60, plugin=plugin)
    assert len(set(counts)) == 1 and 2 <= counts[0] <= 16, counts


def test_invoke_failure_exit_code(tmp_path: Path, plugin: Path) -> None:
    elf = _build(tmp_path, "bad", _header("bad", 4, 4), FAIL_C)
    x = np.ones((2, 4), dtype=np.int8)
    with pytest.raises(qemu.QemuError) as info:
        qemu.run_qemu(elf, x, 4, None, timeout=60, plugin=plugin)
    assert info.value.returncode == 3
    # QEMU 7.2 prints semihosting SYS_WRITE0 text on its stderr (not stdout).
    assert "invoke failed on sample 0\n" in info.value.stdout + info.value.stderr


def test_compile_error_raises_toolchain_error(tmp_path: Path) -> None:
    _require_tools()
    with pytest.raises(qemu.ToolchainError) as info:
        _build(tmp_path, "broken", _header("broken", 4, 4),
               '#include "broken.h"\nint broken_invoke(const int8_t *i, int8_t *o) '
               "{ return undeclared_symbol; }\n")
    assert "undeclared_symbol" in str(info.value)


def test_section_sizes(tmp_path: Path) -> None:
    _require_tools()
    elf = _build_toy(tmp_path, 16)
    sizes = qemu.section_sizes(elf)
    assert sizes["data"] >= 4  # toy_scale
    assert sizes["text"] > 0 and sizes["bss"] >= 32  # the harness's I/O buffers
    assert sizes["flash"] == sizes["text"] + sizes["data"]
    obj = qemu.section_sizes(tmp_path / "build" / "obj" / "toy.o")
    assert 0 < obj["text"] < sizes["text"]
