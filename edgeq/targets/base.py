"""What every target provides (``Target``), and target profiles (TOML, data not code). A
target is a module ``edgeq/targets/<format>/__init__.py`` with every member of ``Target``;
``targets.target_module`` checks that it has them.

Profiles ship inside the package (``edgeq/targets/profiles/*.toml``). Users add their own from
folders named by ``--targets-dir`` / ``edgeq.build(targets_dir=...)`` or the environment variable
``EDGEQ_TARGETS_DIR`` (several folders separated by ``os.pathsep``); a user profile with the
name of a built-in one replaces it."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from ..errors import EdgeqError
from ..files import atomic_write_bytes, atomic_write_text  # noqa: F401 - targets write through these
from ..ir import Graph

#: the profiles shipped in the package
BUILTIN_PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
#: folders of user profiles, os.pathsep-separated
TARGETS_DIR_ENV = "EDGEQ_TARGETS_DIR"
#: profile format -> the module under edgeq/targets/ implementing it
FORMAT_MODULES = {"onnx": "onnx_qdq", "tflite": "tflite", "c": "c"}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass
class TargetProfile:
    name: str
    format: str                      # "onnx" | "tflite" | "c"
    description: str = ""
    quantizer: dict[str, Any] = field(default_factory=dict)   # options passed to quantize()
    ops: list[str] = field(default_factory=list)              # IR ops this target lowers
    budget: dict[str, int] = field(default_factory=dict)      # flash_bytes, ram_bytes
    raw: dict[str, Any] = field(default_factory=dict)         # the whole TOML, for target modules
    source: str = "built-in"                                  # or the option that added its folder
    path: Path | None = None


@dataclass
class RuntimeRun:
    """One runtime's outputs on every sample, as integers comparable with the reference."""
    runtime: str                     # e.g. "onnxruntime 1.32.0 (ORT_ENABLE_ALL)"
    outputs: list[np.ndarray]        # one per graph output, same shape/dtype as the reference's
    must_be_exact: bool              # a mismatch fails the build
    extra: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """The interface of a target module."""

    #: how the artifact turns float inputs into integers ("half_even": ONNX QuantizeLinear,
    #: "half_away": TFLite QUANTIZE); artifacts with integer inputs get the reference's integers
    input_rounding: str

    def prepare(self, qgraph: Graph, profile: TargetProfile, options: dict) -> Graph:
        """The target's form of the quantized graph (e.g. NHWC); the reference runs on it."""

    def emit(self, graph: Graph, out_dir: Path, profile: TargetProfile, options: dict) -> list[Path]:
        """Write the artifacts (atomically); return their paths."""

    def run(self, graph: Graph, artifacts: list[Path], profile: TargetProfile, int_inputs: list[np.ndarray],
            float_inputs: list[np.ndarray], options: dict) -> list[RuntimeRun]:
        """Run every runtime on all samples; integer outputs aligned with the reference's."""

    def memory(self, graph: Graph, artifacts: list[Path], profile: TargetProfile, options: dict) -> dict:
        """Memory figures of the artifact (empty when the target has none to report); a model
        over the profile's budget raises EdgeqError naming both numbers."""

    def first_mismatch(self, graph: Graph, artifacts: list[Path], profile: TargetProfile,
                       sample: list[np.ndarray], ref_values: dict[str, np.ndarray], options: dict) -> str:
        """Where a runtime that must be bit-exact first differs from the reference on one
        sample ("" when the target cannot tell)."""

    def supported_ops(self) -> list[str]:
        """The IR ops the target lowers."""

    def refusals(self) -> dict[str, str]:
        """IR ops the target deliberately does not lower, with the reason."""


TARGET_MEMBERS = ("input_rounding", "prepare", "emit", "run", "memory", "first_mismatch", "supported_ops",
                  "refusals")


def profile_dirs(extra: Iterable[str | Path] | str | Path | None = None) -> list[tuple[Path, str]]:
    """Folders searched for profiles, first match wins: ``extra`` (``--targets-dir``), then
    ``EDGEQ_TARGETS_DIR``, then the built-in profiles. Each with its origin for messages."""
    if isinstance(extra, (str, Path)):
        extra = [extra]
    user = [(Path(d), "--targets-dir") for d in (extra or [])]
    env = os.environ.get(TARGETS_DIR_ENV, "")
    user += [(Path(d), TARGETS_DIR_ENV) for d in env.split(os.pathsep) if d]
    for d, origin in user:
        if not d.is_dir():
            raise EdgeqError(f"target profile folder {d} (from {origin}) does not exist or is not a folder; "
                             "name a folder holding NAME.toml profiles")
        if not any(d.glob("*.toml")):
            raise EdgeqError(f"target profile folder {d} (from {origin}) holds no *.toml profile; "
                             "put NAME.toml files there (see the built-in ones with `edgeq targets`)")
    return [*user, (BUILTIN_PROFILE_DIR, "built-in")]


def list_profiles(targets_dir: Iterable[str | Path] | str | Path | None = None) -> list[str]:
    """Names of every profile found (user folders and the built-in ones)."""
    names = {p.stem for d, _ in profile_dirs(targets_dir) for p in d.glob("*.toml")}
    if not names:
        raise EdgeqError(f"no target profiles found (the built-in ones belong in {BUILTIN_PROFILE_DIR}); "
                         "reinstall edgeq, or name a folder of profiles with --targets-dir")
    return sorted(names)


def profile_path(name: str, targets_dir: Iterable[str | Path] | str | Path | None = None) -> tuple[Path, str]:
    """The file that defines profile ``name`` and where it comes from ("built-in" or the option)."""
    if not isinstance(name, str) or not _PROFILE_NAME.match(name) or ".." in name:
        raise EdgeqError(f"target '{name}' is not a profile name (letters, digits, '-', '_', '.'; no paths); "
                         "to use your own profile file, put it in a folder and pass --targets-dir FOLDER")
    dirs = profile_dirs(targets_dir)
    for d, origin in dirs:
        path = d / f"{name}.toml"
        if path.is_file():
            return path, origin
    where = ", ".join(str(d) for d, _ in dirs)
    raise EdgeqError(f"unknown target '{name}'; available targets: {', '.join(list_profiles(targets_dir))} "
                     f"(profiles live in {where}; add yours with --targets-dir or {TARGETS_DIR_ENV})")


def load_profile(name: str, targets_dir: Iterable[str | Path] | str | Path | None = None) -> TargetProfile:
    """Read and check profile ``name``; a malformed file is an EdgeqError naming it."""
    path, origin = profile_path(name, targets_dir)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise EdgeqError(f"target profile {path} is not valid TOML ({e}); fix the file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise EdgeqError(f"cannot read target profile {path}: {e}") from None
    t = raw.get("target")
    if not isinstance(t, dict):
        raise EdgeqError(f"target profile {path} has no [target] table; it needs at least "
                         f"[target] format = one of {', '.join(FORMAT_MODULES)}")
    fmt = t.get("format")
    if fmt not in FORMAT_MODULES:
        raise EdgeqError(f"target profile {path}: format {fmt!r} is not one of {', '.join(FORMAT_MODULES)}")
    ops = t.get("ops", [])
    if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
        raise EdgeqError(f"target profile {path}: [target] ops must be a list of op names")
    for key, kind in (("quantizer", dict), ("budget", dict)):
        if not isinstance(raw.get(key, {}), kind):
            raise EdgeqError(f"target profile {path}: [{key}] must be a table")
    budget = raw.get("budget", {})
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in budget.values()):
        raise EdgeqError(f"target profile {path}: [budget] values must be positive integers (bytes)")
    return TargetProfile(name=name, format=fmt, description=str(t.get("description", "")),
                         quantizer=raw.get("quantizer", {}), ops=ops, budget=budget, raw=raw,
                         source=origin, path=path)
