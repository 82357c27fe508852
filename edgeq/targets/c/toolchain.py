"""Compiling generated C: a host executable for validation, objects for footprint reports.

Cross compilation for the Cortex-M4 and QEMU runs live in :mod:`.qemu`; this module adds the
host side (a small runner that streams samples through ``NAME_invoke``) and per-object sizes
(``size -B``) plus stack usage (``-fstack-usage``) of the model's own files.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import EdgeqError
from . import qemu

SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]

HOST_RUNNER = """\
/* edgeq host runner: streams int8 samples from a file through {name}_invoke. */
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"

int main(int argc, char **argv)
{{
    FILE *in;
    FILE *out;
    long n = 0;
    if (argc != 3) {{
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\\n", argv[0]);
        return 2;
    }}
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {{
        fprintf(stderr, "cannot open %s or %s\\n", argv[1], argv[2]);
        return 2;
    }}
    for (;;) {{
        /* exact-size heap buffers per sample, so that a sanitizer sees any overrun */
        int8_t *x = (int8_t *)malloc({upper}_INPUT_SIZE);
        int8_t *y = (int8_t *)malloc({upper}_OUTPUT_SIZE);
        size_t got;
        int rc;
        if (x == NULL || y == NULL) {{
            return 2;
        }}
#ifdef {upper}_INPUT_IN_ARENA
        got = fread({name}_input(), 1, {upper}_INPUT_SIZE, in);   /* the input lives in the arena */
#else
        got = fread(x, 1, {upper}_INPUT_SIZE, in);
#endif
        if (got != (size_t){upper}_INPUT_SIZE) {{
            free(x);
            free(y);
            if (got != 0) {{
                fprintf(stderr, "truncated input sample %ld\\n", n);
                return 5;
            }}
            break;
        }}
#ifdef {upper}_INPUT_IN_ARENA
        rc = {name}_run(y);
#else
        rc = {name}_invoke(x, y);
#endif
        if (rc != 0) {{
            fprintf(stderr, "{name}_invoke failed with %d on sample %ld\\n", rc, n);
            return 3;
        }}
        if (fwrite(y, 1, {upper}_OUTPUT_SIZE, out) != (size_t){upper}_OUTPUT_SIZE) {{
            return 2;
        }}
        free(x);
        free(y);
        ++n;
    }}
    fclose(in);
    return fclose(out) == 0 ? 0 : 2;
}}
"""


TRACE_RUNNER = """\
/* edgeq trace runner: one sample through {name}_invoke, every layer's output to a file. */
#include <stdio.h>
#include <stdlib.h>
#include "{name}.h"

static FILE *trace_file;

void edgeq_trace(int layer, const int8_t *data, int32_t size);
void edgeq_trace(int layer, const int8_t *data, int32_t size)
{{
    int32_t header[2];
    header[0] = layer;
    header[1] = size;
    fwrite(header, sizeof header, 1, trace_file);
    fwrite(data, 1, (size_t)size, trace_file);
}}

int main(int argc, char **argv)
{{
    static int8_t x[{upper}_INPUT_SIZE];
    static int8_t y[{upper}_OUTPUT_SIZE];
    FILE *in;
    int rc;
    if (argc != 3) {{
        return 2;
    }}
    in = fopen(argv[1], "rb");
    trace_file = fopen(argv[2], "wb");
    if (in == NULL || trace_file == NULL || fread(x, 1, sizeof x, in) != sizeof x) {{
        return 2;
    }}
    rc = {name}_invoke(x, y);
    fclose(in);
    return fclose(trace_file) == 0 && rc == 0 ? 0 : 3;
}}
"""


def compiler_profile(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``{cc, cflags, ldflags, size, emulator?}`` from a target TOML (``profile.raw``)."""
    comp = dict(raw.get("compiler", {}))
    cc = str(comp.get("cc", "gcc"))
    prefix = cc[:-3] if cc.endswith("gcc") else ""
    out = {
        "cc": cc,
        "cflags": [str(f) for f in comp.get("cflags", [])],
        "ldflags": [str(f) for f in comp.get("ldflags", [])],
        "size": str(comp.get("size", prefix + "size" if prefix else "size")),
    }
    emu = raw.get("emulator")
    if emu:
        out["emulator"] = emu
    return out


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as exc:
        raise qemu.ToolchainError(f"{what}: executable not found: {cmd[0]}", cmd) from exc
    if proc.returncode != 0:
        raise qemu.ToolchainError(f"{what} failed (exit {proc.returncode})", cmd, proc.stdout,
                                  proc.returncode)
    return proc.stdout


def compiler_version(cc: str) -> str:
    try:
        out = subprocess.run([cc, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL).stdout.split()
    except FileNotFoundError:
        return cc
    return f"{Path(cc).name} {out[0]}" if out else cc


def build_host(c_dir: Path, name: str, sources: Sequence[Path], build_dir: Path,
               prof: Mapping[str, Any], extra_cflags: Sequence[str] = ()) -> Path:
    """Compile the model sources with a host runner into ``build_dir/NAME_host``."""
    if shutil.which(prof["cc"]) is None:
        raise EdgeqError(f"host C compiler '{prof['cc']}' not found on PATH (install gcc)")
    build_dir.mkdir(parents=True, exist_ok=True)
    runner = build_dir / f"{name}_host_runner.c"
    runner.write_text(HOST_RUNNER.format(name=name, upper=name.upper()))
    exe = build_dir / f"{name}_host"
    cmd = [prof["cc"], *prof["cflags"], *extra_cflags, f"-I{c_dir}",
           *[str(s) for s in sources], str(runner), "-o", str(exe), *prof["ldflags"]]
    _run(cmd, f"compiling {name} for the host")
    return exe


def run_host(exe: Path, inputs: np.ndarray, output_size: int, build_dir: Path,
             timeout: float = 600.0) -> np.ndarray:
    """Run the host runner on ``inputs`` (N, input_size) int8; returns (N, output_size) int8."""
    inp, outp = build_dir / "host_inputs.bin", build_dir / "host_outputs.bin"
    inp.write_bytes(np.ascontiguousarray(inputs, dtype=np.int8).tobytes())
    outp.unlink(missing_ok=True)
    env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"}
    proc = subprocess.run([str(exe), str(inp), str(outp)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    if proc.returncode != 0 or proc.stderr.strip():
        raise EdgeqError(f"{exe.name} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip())
    raw = outp.read_bytes()
    n = inputs.shape[0]
    if len(raw) != n * output_size:
        raise EdgeqError(f"{exe.name} wrote {len(raw)} bytes, expected {n} x {output_size}")
    return np.frombuffer(raw, dtype=np.int8).reshape(n, output_size).copy()


def compile_objects(sources: Sequence[Path], c_dir: Path, obj_dir: Path,
                    prof: Mapping[str, Any]) -> dict[str, Path]:
    """Compile each source to ``obj_dir/<stem>.o`` (with -fstack-usage); returns {file name: object}."""
    obj_dir.mkdir(parents=True, exist_ok=True)
    objs = {}
    for src in sources:
        obj = obj_dir / (Path(src).stem + ".o")
        _run([prof["cc"], *prof["cflags"], "-fstack-usage", f"-I{c_dir}", "-c", str(src), "-o", str(obj)],
             f"compiling {Path(src).name}")
        objs[Path(src).name] = obj
    return objs


def stack_usage(obj_dir: Path) -> dict[str, int]:
    """Function -> bytes of stack, from the ``.su`` files next to the objects."""
    out: dict[str, int] = {}
    for su in sorted(obj_dir.glob("*.su")):
        for line in su.read_text().splitlines():
            fields = line.split("\t")
            if len(fields) >= 2 and fields[1].strip().isdigit():
                fn = fields[0].rsplit(":", 1)[-1]
                out[fn] = max(out.get(fn, 0), int(fields[1]))
    return out


def object_sizes(objs: Mapping[str, Path], size_tool: str) -> dict[str, dict[str, int]]:
    return {name: qemu.section_sizes(obj, size_tool) for name, obj in sorted(objs.items())}


def called_kernels(source_text: str) -> set[str]:
    return set(re.findall(r"\b(edgeq_[a-z0-9_]+_s(?:8|16))\s*\(", source_text))
