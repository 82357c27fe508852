"""Cross-compile generated int8 model C code for a Cortex-M4 and run it under QEMU.

The model C code (written by the code generator) exposes, for a model ``NAME``::

    #include "NAME.h"   /* NAME_INPUT_SIZE, NAME_OUTPUT_SIZE: int8 element counts */
    int NAME_invoke(const int8_t *input, int8_t *output);   /* 0 on success */

(the size macros may also be spelled in upper case, ``TOY_INPUT_SIZE`` for ``toy``).

:func:`build_elf` links it with the bare-metal harness in ``mcu/`` (vector table,
startup code, semihosting, ``main``) for the QEMU ``mps2-an386`` board.  The ELF reads
N samples from a host file through semihosting, runs ``NAME_invoke`` on each between
the marker functions ``bench_start()`` / ``bench_stop()`` and writes the outputs to
another host file.  Both file paths are compiled into the ELF and recorded in a sidecar
JSON file (``<elf>.json``) that :func:`run_qemu` reads.

:func:`run_qemu` runs the ELF under ``qemu-system-arm`` with a TCG plugin
(``mcu/insn_count_plugin.c``, built by :func:`build_plugin`) that counts the guest
instructions executed from the entry of ``bench_start`` to the entry of ``bench_stop``:
exact, deterministic instruction counts per inference (QEMU has no cycle model, so
these are never cycles or time).  The count includes a small constant harness overhead
(the marker's return, argument set-up and the calls, 8 instructions with GCC 12 -O2).

Harness exit codes (QEMU's exit status): 0 ok, 2 semihosting I/O error, 3 the model's
invoke returned non-zero, 4 unexpected exception (fault), 5 input file size not a
multiple of the model's input size.

Profiles are plain dicts with keys ``cc``, ``cflags``, ``ldflags``, ``emulator`` (and
optionally ``nm``, ``size``, ``host_cc``); :func:`normalize_profile` also accepts the
shape of ``targets/cortex-m4.toml`` (``[compiler]`` and ``[emulator]`` tables).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgeq.errors import EdgeqError

__all__ = [
    "DEFAULT_PROFILE",
    "EXIT_CODES",
    "MCU_DIR",
    "QemuError",
    "ToolchainError",
    "build_elf",
    "build_plugin",
    "default_cache_dir",
    "load_profile",
    "missing_tools",
    "normalize_profile",
    "run_qemu",
    "run_qemu_marked",
    "section_sizes",
    "symbol_address",
    "tools_available",
]

#: Directory holding the harness C sources, linker script and QEMU plugin source.
MCU_DIR: Path = Path(__file__).resolve().parent / "mcu"

_HARNESS_SOURCES = ("harness.c", "startup.c", "semihost.c")
_LINKER_SCRIPT = "mps2_an386.ld"
_PLUGIN_SOURCE = "insn_count_plugin.c"
_CONFIG_HEADER = "edgeq_harness_config.h"

#: Defaults; the real values come from ``targets/cortex-m4.toml`` via :func:`load_profile`.
DEFAULT_PROFILE: dict[str, Any] = {
    "cc": "arm-none-eabi-gcc",
    "cflags": [
        "-mcpu=cortex-m4",
        "-mthumb",
        "-mfloat-abi=hard",
        "-mfpu=fpv4-sp-d16",
        "-O2",
        "-ffunction-sections",
        "-fdata-sections",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ],
    "ldflags": ["-Wl,--gc-sections", "--specs=nano.specs", "-lc", "-lm", "-lgcc"],
    "emulator": ["qemu-system-arm", "-M", "mps2-an386", "-cpu", "cortex-m4"],
}

#: Meaning of the harness's exit codes.
EXIT_CODES: dict[int, str] = {
    0: "ok",
    2: "semihosting I/O error (input/output file)",
    3: "model invoke returned non-zero",
    4: "unexpected exception (fault) on the target",
    5: "input file size is not a multiple of the model input size",
}

# Flags run_qemu adds to the emulator command unless the profile already has them.
_QEMU_RUN_FLAGS: list[tuple[str, str | None]] = [
    ("-nographic", None),
    ("-monitor", "none"),
    ("-serial", "none"),
    ("-semihosting-config", "enable=on,target=native"),
]


class ToolchainError(EdgeqError, RuntimeError):
    """A compiler, linker or binutils command failed; ``output`` holds its messages."""

    def __init__(self, message: str, cmd: Sequence[str] = (), output: str = "",
                 returncode: int | None = None) -> None:
        self.cmd = list(cmd)
        self.output = output
        self.returncode = returncode
        text = message
        if cmd:
            text += "\n$ " + " ".join(str(c) for c in cmd)
        if output:
            text += "\n" + output.rstrip()
        super().__init__(text)


class QemuError(EdgeqError, RuntimeError):
    """QEMU failed, timed out, or the harness exited with a non-zero code.

    ``returncode`` is QEMU's exit status (the harness's exit code, see
    :data:`EXIT_CODES`), or ``None`` on timeout.
    """

    def __init__(self, message: str, returncode: int | None = None,
                 stdout: str = "", stderr: str = "", cmd: Sequence[str] = ()) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.cmd = list(cmd)
        text = message
        if stdout.strip():
            text += "\n[stdout]\n" + stdout.rstrip()
        if stderr.strip():
            text += "\n[stderr]\n" + stderr.rstrip()
        super().__init__(text)


# --------------------------------------------------------------------------- profiles

def normalize_profile(profile: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return a flat profile dict ``{cc, cflags, ldflags, emulator, nm, size, host_cc}``.

    Accepts ``None`` (defaults), a flat dict, or a parsed ``targets/*.toml`` with a
    ``[compiler]`` table (``cc``, ``cflags``, ``ldflags``) and an ``[emulator]`` table
    (``command`` list; ``cmd``/``argv`` also accepted) or an ``emulator`` list.  Missing
    keys fall back to :data:`DEFAULT_PROFILE`.  ``nm`` and ``size`` default to the
    binutils with the compiler's prefix (``arm-none-eabi-nm``, ``arm-none-eabi-size``).
    """
    src: dict[str, Any] = dict(profile or {})
    flat: dict[str, Any] = {}
    compiler = src.get("compiler")
    if isinstance(compiler, Mapping):
        flat.update(compiler)
    for key in ("cc", "cflags", "ldflags", "nm", "size", "host_cc"):
        if key in src:
            flat[key] = src[key]
    emulator = src.get("emulator")
    if isinstance(emulator, Mapping):
        for key in ("command", "cmd", "argv"):
            if key in emulator:
                emulator = emulator[key]
                break
        else:
            raise ValueError("profile [emulator] table needs a 'command' list")
    if emulator is not None:
        flat["emulator"] = emulator

    out: dict[str, Any] = {}
    out["cc"] = str(flat.get("cc", DEFAULT_PROFILE["cc"]))
    for key in ("cflags", "ldflags", "emulator"):
        value = flat.get(key, DEFAULT_PROFILE[key])
        if isinstance(value, str):
            raise TypeError(f"profile '{key}' must be a list of strings, not a string")
        out[key] = [str(v) for v in value]
    if not out["emulator"]:
        raise ValueError("profile 'emulator' command is empty")
    prefix = out["cc"][:-3] if out["cc"].endswith("gcc") else "arm-none-eabi-"
    out["nm"] = str(flat.get("nm", prefix + "nm"))
    out["size"] = str(flat.get("size", prefix + "size"))
    out["host_cc"] = str(flat.get("host_cc", "gcc"))
    return out


def load_profile(path: Path) -> dict[str, Any]:
    """Read a target TOML file (e.g. ``targets/cortex-m4.toml``) and normalize it."""
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return normalize_profile(tomllib.load(f))


def missing_tools(profile: Mapping[str, Any] | None = None) -> list[str]:
    """Names of the required executables not found on PATH (empty list: all present).

    Checks the cross compiler, ``nm`` and ``size``, the emulator and the host C compiler
    used to build the QEMU plugin.
    """
    prof = normalize_profile(profile)
    tools = [prof["cc"], prof["nm"], prof["size"], prof["emulator"][0], prof["host_cc"]]
    return [t for t in dict.fromkeys(tools) if shutil.which(t) is None]


def tools_available(profile: Mapping[str, Any] | None = None) -> bool:
    """True if the cross toolchain, QEMU and a host C compiler are all on PATH."""
    return not missing_tools(profile)


def default_cache_dir() -> Path:
    """Cache directory for the built plugin: ``$EDGEQ_CACHE_DIR`` or ``~/.cache/edgeq``."""
    env = os.environ.get("EDGEQ_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeq"


# --------------------------------------------------------------------------- helpers

def _run_tool(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as exc:
        raise ToolchainError(f"{what}: executable not found: {cmd[0]}", cmd) from exc
    if proc.returncode != 0:
        raise ToolchainError(f"{what} failed (exit {proc.returncode})", cmd, proc.stdout,
                             proc.returncode)
    return proc.stdout


def _c_string(text: str) -> str:
    """A C string literal for ``text`` (UTF-8, non-printable bytes octal-escaped)."""
    parts = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?' or not (32 <= byte < 127):
            parts.append(f"\\{byte:03o}")
        else:
            parts.append(ch)
    return '"' + "".join(parts) + '"'


def _config_header(model_name: str, input_path: Path, output_path: Path) -> str:
    upper = model_name.upper()
    lines = [
        "/* Generated by edgeq.targets.c.qemu.build_elf: harness configuration. */",
        "#ifndef EDGEQ_HARNESS_CONFIG_H",
        "#define EDGEQ_HARNESS_CONFIG_H",
        f'#include "{model_name}.h"',
        f"#define MODEL_INVOKE {model_name}_invoke",
        f"#ifdef {upper}_INPUT_IN_ARENA",
        f"#define MODEL_INPUT_BUFFER {model_name}_input",
        f"#define MODEL_RUN {model_name}_run",
        "#endif",
    ]
    for kind in ("INPUT", "OUTPUT"):
        names = [f"{model_name}_{kind}_SIZE"]
        if upper != model_name:
            names.append(f"{upper}_{kind}_SIZE")
        for i, name in enumerate(names):
            lines.append(f"#{'if' if i == 0 else 'elif'} defined({name})")
            if name == f"MODEL_{kind}_SIZE":     # a model named "model" defines it itself
                lines.append(f"/* {name} comes from {model_name}.h */")
            else:
                lines.append(f"#define MODEL_{kind}_SIZE {name}")
        lines.append("#else")
        lines.append(f'#error "{model_name}.h must #define {" or ".join(names)}"')
        lines.append("#endif")
    lines += [
        f"#define EDGEQ_INPUT_PATH {_c_string(str(input_path))}",
        f"#define EDGEQ_OUTPUT_PATH {_c_string(str(output_path))}",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def _sidecar_path(elf: Path) -> Path:
    return elf.with_name(elf.name + ".json")


def symbol_address(elf: Path, name: str, nm: str = "arm-none-eabi-nm") -> int:
    """Address of global symbol ``name`` in ``elf`` (Thumb bit cleared), via ``nm``."""
    out = _run_tool([nm, "--defined-only", str(elf)], "nm")
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16) & ~1
    raise ToolchainError(f"symbol {name!r} not found in {elf}")


def section_sizes(elf_or_obj: Path, size_tool: str = "arm-none-eabi-size") -> dict[str, int]:
    """Berkeley sizes of an ELF, object or archive, via ``arm-none-eabi-size``.

    Returns ``{"text", "data", "bss", "flash", "ram"}`` in bytes, summed over the
    members of an archive.  ``text`` includes code, ``.rodata`` and the vector table;
    ``flash = text + data`` (the .data load image), ``ram = data + bss`` (no stack).
    """
    out = _run_tool([size_tool, "-B", str(elf_or_obj)], "size")
    totals = {"text": 0, "data": 0, "bss": 0}
    rows = 0
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and all(f.isdigit() for f in fields[:3]):
            totals["text"] += int(fields[0])
            totals["data"] += int(fields[1])
            totals["bss"] += int(fields[2])
            rows += 1
    if rows == 0:
        raise ToolchainError(f"cannot parse size output for {elf_or_obj}", output=out)
    totals["flash"] = totals["text"] + totals["data"]
    totals["ram"] = totals["data"] + totals["bss"]
    return totals


# --------------------------------------------------------------------------- build

def build_elf(sources: Sequence[Path], include_dirs: Sequence[Path], model_name: str,
              out_dir: Path, profile: Mapping[str, Any] | None,
              input_path: Path, output_path: Path) -> Path:
    """Compile the model sources with the QEMU harness into ``out_dir/<model_name>.elf``.

    Args:
        sources: the model's C files (``<model_name>.c``, kernels, weights...).
        include_dirs: directories searched for ``<model_name>.h`` and other headers
            (the sources' own directories are appended automatically).
        model_name: C identifier ``NAME`` of ``NAME.h`` / ``NAME_invoke``.
        out_dir: build directory (objects in ``out_dir/obj``, ELF, map file, sidecar).
        profile: toolchain profile (see :func:`normalize_profile`); ``None``: defaults.
        input_path: host file the ELF will read samples from (made absolute; compiled in).
        output_path: host file the ELF will write outputs to (made absolute; compiled in).

    Returns:
        Path of the ELF.  ``<elf>.json`` records the I/O paths and marker addresses
        for :func:`run_qemu`; each source's object file is kept in ``out_dir/obj``
        (useful for :func:`section_sizes` on the model alone).

    Raises:
        ToolchainError: a compile or link step failed (message includes its output).
        ValueError: ``model_name`` is not a C identifier.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", model_name):
        raise ValueError(f"model_name must be a C identifier, got {model_name!r}")
    prof = normalize_profile(profile)
    out_dir = Path(out_dir).resolve()
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    input_path = Path(input_path).resolve()
    output_path = Path(output_path).resolve()
    if input_path == output_path:
        raise ValueError("input_path and output_path must differ")

    (out_dir / _CONFIG_HEADER).write_text(_config_header(model_name, input_path, output_path))

    model_sources = [Path(s).resolve() for s in sources]
    incs: list[Path] = [Path(d).resolve() for d in include_dirs]
    incs += [s.parent for s in model_sources]
    inc_flags = [f"-I{d}" for d in dict.fromkeys([out_dir, *incs])]

    harness = [MCU_DIR / name for name in _HARNESS_SOURCES]
    objects: list[Path] = []
    used_names: set[str] = set()
    for src in [*harness, *model_sources]:
        stem = src.stem
        name = f"{stem}.o"
        k = 1
        while name in used_names:
            name = f"{stem}_{k}.o"
            k += 1
        used_names.add(name)
        obj = obj_dir / name
        cmd = [prof["cc"], *prof["cflags"], *inc_flags]
        if src in harness:
            cmd.append(f'-DEDGEQ_HARNESS_CONFIG="{_CONFIG_HEADER}"')
        cmd += ["-c", str(src), "-o", str(obj)]
        _run_tool(cmd, f"compiling {src.name}")
        objects.append(obj)

    elf = out_dir / f"{model_name}.elf"
    link = [prof["cc"], *prof["cflags"], *[str(o) for o in objects],
            "-nostartfiles", "-T", str(MCU_DIR / _LINKER_SCRIPT), *prof["ldflags"],
            f"-Wl,-Map={out_dir / (model_name + '.map')}", "-o", str(elf)]
    _run_tool(link, "linking")

    start = symbol_address(elf, "bench_start", prof["nm"])
    stop = symbol_address(elf, "bench_stop", prof["nm"])
    try:    # only kept by the linker in a profile build, which calls it
        mark: int | None = symbol_address(elf, "edgeq_layer_mark", prof["nm"])
    except ToolchainError:
        mark = None
    if len({start, stop, mark}) != 3:
        raise ToolchainError("bench_start, bench_stop and edgeq_layer_mark were folded together")
    meta = {
        "model_name": model_name,
        "input_path": str(input_path),
        "output_path": str(output_path),
        "bench_start": start,
        "bench_stop": stop,
        "layer_mark": mark,
    }
    _sidecar_path(elf).write_text(json.dumps(meta, indent=2) + "\n")
    return elf


def build_plugin(cache_dir: Path, host_cc: str = "gcc") -> Path:
    """Build (or reuse from ``cache_dir``) the instruction-counting QEMU plugin.

    The shared object is named after a hash of the plugin source and the compile command,
    and is written atomically, so concurrent callers are safe.
    """
    src = MCU_DIR / _PLUGIN_SOURCE
    flags = ["-shared", "-fPIC", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"]
    digest = hashlib.sha256(src.read_bytes() + repr([host_cc, *flags]).encode()).hexdigest()
    cache_dir = Path(cache_dir)
    target = cache_dir / f"edgeq_insn_count_{digest[:16]}.so"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".insn_count_", suffix=".so", dir=cache_dir)
    os.close(fd)
    try:
        _run_tool([host_cc, *flags, "-o", tmp_name, str(src)], "building the QEMU plugin")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


# --------------------------------------------------------------------------- run

def _qemu_opt_escape(value: str) -> str:
    # QEMU option values use ',' as separator; a literal comma is written ',,'.
    return value.replace(",", ",,")


def run_qemu(elf: Path, inputs: np.ndarray, output_size: int,
             profile: Mapping[str, Any] | None = None, timeout: float = 120.0,
             *, plugin: Path | None = None) -> tuple[np.ndarray, list[int]]:
    """Run an ELF from :func:`build_elf` on ``inputs`` under QEMU.

    Args:
        elf: ELF built by :func:`build_elf` (its ``<elf>.json`` sidecar must exist).
        inputs: int8 array of shape ``(N, input_size)`` (a 1-D array is one sample).
        output_size: int8 elements per output sample (the model's OUTPUT_SIZE).
        profile: toolchain profile; its ``emulator`` command is used.
        timeout: seconds before QEMU is killed.
        plugin: instruction-counting plugin; default :func:`build_plugin` in
            :func:`default_cache_dir`.

    Returns:
        ``(outputs, counts)``: int8 array ``(N, output_size)`` and the number of guest
        instructions per inference (entry of ``bench_start`` to entry of ``bench_stop``).

    Raises:
        QemuError: QEMU failed or timed out, the harness exited non-zero (``returncode``
            3: invoke failed, 4: fault...), or outputs/counts are incomplete.

    The ELF reads and writes the fixed host paths compiled into it, so do not run the
    same ELF concurrently.
    """
    outputs, counts, _ = _run_qemu(elf, inputs, output_size, profile, timeout, plugin, marks=False)
    return outputs, counts


def run_qemu_marked(elf: Path, inputs: np.ndarray, output_size: int,
                    profile: Mapping[str, Any] | None = None, timeout: float = 120.0,
                    *, plugin: Path | None = None) -> tuple[np.ndarray, list[int], list[list[int]]]:
    """:func:`run_qemu`, plus per sample the instruction counts at each call of the harness's
    ``edgeq_layer_mark()`` (instructions since ``bench_start``'s entry, up to the mark's entry):
    the per-layer profile build calls it after every layer."""
    return _run_qemu(elf, inputs, output_size, profile, timeout, plugin, marks=True)


def _run_qemu(elf: Path, inputs: np.ndarray, output_size: int, profile: Mapping[str, Any] | None,
              timeout: float, plugin: Path | None, marks: bool) -> tuple[np.ndarray, list[int], list[list[int]]]:
    prof = normalize_profile(profile)
    elf = Path(elf).resolve()
    sidecar = _sidecar_path(elf)
    if not sidecar.exists():
        raise FileNotFoundError(f"{sidecar} missing: build the ELF with build_elf()")
    meta = json.loads(sidecar.read_text())
    input_path = Path(meta["input_path"])
    output_path = Path(meta["output_path"])

    arr = np.asarray(inputs)
    if arr.dtype != np.int8:
        raise TypeError(f"inputs must be int8, got {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"inputs must have shape (N, input_size), got {arr.shape}")
    n = int(arr.shape[0])
    output_size = int(output_size)

    input_path.parent.mkdir(parents=True, exist_ok=True)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    input_path.write_bytes(np.ascontiguousarray(arr).tobytes())
    output_path.unlink(missing_ok=True)

    if plugin is None:
        plugin = build_plugin(default_cache_dir(), prof["host_cc"])

    with tempfile.TemporaryDirectory(prefix="edgeq_qemu_") as tmp:
        counts_path = Path(tmp) / "counts.txt"
        marks_path = Path(tmp) / "marks.txt"
        cmd = list(prof["emulator"])
        for flag, value in _QEMU_RUN_FLAGS:
            if flag not in cmd:
                cmd += [flag] if value is None else [flag, value]
        if marks and meta.get("layer_mark") is None:
            raise QemuError(f"{elf.name} has no edgeq_layer_mark(): not a profile build", None)
        plugin_opt = ",".join([
            _qemu_opt_escape(str(Path(plugin).resolve())),
            f"start={meta['bench_start']:#x}",
            f"stop={meta['bench_stop']:#x}",
            "out=" + _qemu_opt_escape(str(counts_path)),
        ] + ([f"mark={meta['layer_mark']:#x}", "marks=" + _qemu_opt_escape(str(marks_path))] if marks else []))
        cmd += ["-kernel", str(elf), "-plugin", plugin_opt]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            def _text(b: bytes | str | None) -> str:
                return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
            raise QemuError(f"QEMU timed out after {timeout} s running {elf.name}", None,
                            _text(exc.stdout), _text(exc.stderr), cmd) from exc
        except FileNotFoundError as exc:
            raise QemuError(f"emulator not found: {cmd[0]}", None, cmd=cmd) from exc
        if proc.returncode != 0:
            meaning = EXIT_CODES.get(proc.returncode, "QEMU error")
            raise QemuError(f"{elf.name} exited with code {proc.returncode}: {meaning}",
                            proc.returncode, proc.stdout, proc.stderr, cmd)
        if not counts_path.exists():
            raise QemuError("the instruction-count plugin wrote no counts", 0,
                            proc.stdout, proc.stderr, cmd)
        counts = [int(line) for line in counts_path.read_text().split()]
        mark_counts = ([[int(v) for v in line.split()] for line in marks_path.read_text().splitlines()]
                       if marks and marks_path.exists() else [])

    if not output_path.exists():
        raise QemuError(f"no output file {output_path}", 0, proc.stdout, proc.stderr, cmd)
    raw = output_path.read_bytes()
    if len(raw) != n * output_size:
        raise QemuError(f"output file has {len(raw)} bytes, expected {n} x {output_size}",
                        0, proc.stdout, proc.stderr, cmd)
    if len(counts) != n:
        raise QemuError(f"got {len(counts)} instruction counts for {n} samples",
                        0, proc.stdout, proc.stderr, cmd)
    if marks and len(mark_counts) != n:
        raise QemuError(f"got layer marks for {len(mark_counts)} of {n} samples", 0, proc.stdout, proc.stderr, cmd)
    outputs = np.frombuffer(raw, dtype=np.int8).reshape(n, output_size).copy()
    return outputs, counts, mark_counts

