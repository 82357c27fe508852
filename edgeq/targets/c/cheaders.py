"""The kernel headers are the one definition of the kernels' interface; this module reads them.

It parses what the generator needs from the shipped ``kernels/*.h``: each parameter struct
(``typedef struct { ... } name;``, members with nested sub-structs and arrays), each kernel
prototype (return type, parameter struct, the header that declares it), ``#define`` constants
and the ``#include "..."`` lines of every shipped file.  ``check_fields`` compares a lowering's
initializer with the struct it fills, so the Python side never restates a layout.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .cformat import Field, is_struct_value

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
#: the 16x8 kernels' sources; shipped next to the others (one flat directory)
KERNEL_DIR_S16 = KERNEL_DIR / "s16"

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_STRUCT = re.compile(r"typedef\s+struct\s*\{(?P<body>[^{}]*)\}\s*(?P<name>\w+)\s*;")
_PROTOTYPE = re.compile(r"(?m)^(?P<returns>void|int)\s+(?P<name>\w+)\s*\((?P<args>[^;{)]*)\)\s*;")
_DEFINE = re.compile(r"(?m)^\s*#\s*define\s+(\w+)\s+(\S[^\n]*?)\s*$")
_INCLUDE = re.compile(r'(?m)^\s*#\s*include\s+"([^"]+)"')
_DECLARATOR = re.compile(r"^(?P<pointer>\*?)\s*(?P<name>\w+)\s*(?:\[\s*(?P<size>\w+)\s*\])?$")


class KernelInterfaceError(RuntimeError):
    """An edgeq bug: a lowering disagrees with the kernel headers (a struct member missing or
    unknown, a kernel nobody declares) or with its registry entry (a kernel it does not name)."""


@dataclass(frozen=True)
class Member:
    name: str
    ctype: str                 # the element type: int32_t, int8_t, or a struct's name
    pointer: bool = False
    array: int | None = None   # element count of an array member


@dataclass(frozen=True)
class CStruct:
    name: str
    header: str
    members: tuple[Member, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.members]


@dataclass(frozen=True)
class Prototype:
    function: str
    returns: str               # "void", or "int" for a kernel that returns a status
    params: str | None         # the type of its parameter struct, None if it takes none
    header: str                # the API header that declares it
    restrict: bool = False     # a pointer parameter is restrict-qualified (no overlap of its buffers)


def strip_comments(text: str) -> str:
    return _COMMENT.sub(" ", text)


def _members(body: str, defines: dict[str, str], where: str) -> tuple[Member, ...]:
    members = []
    for decl in (d.strip() for d in body.split(";")):
        if not decl:
            continue
        m = re.match(r"^(?:const\s+)?(\w+)\s*(.*)$", decl, re.S)
        if m is None:
            raise ValueError(f"{where}: cannot read the member declaration {decl!r}")
        ctype, declarators = m.group(1), m.group(2)
        for part in (p.strip() for p in declarators.split(",")):
            d = _DECLARATOR.match(part)
            if d is None:
                raise ValueError(f"{where}: cannot read the declarator {part!r}")
            size = d.group("size")
            if size is not None:
                size = int(defines.get(size, size))
            members.append(Member(d.group("name"), ctype, bool(d.group("pointer")), size))
    return tuple(members)


class KernelApi:
    """Structs, prototypes, defines and includes of the kernel headers in ``directory``."""

    def __init__(self, directory: Path = KERNEL_DIR) -> None:
        self.directory = Path(directory)
        self.defines: dict[str, str] = {}
        self.structs: dict[str, CStruct] = {}
        self.prototypes: dict[str, Prototype] = {}
        headers = {p.name: strip_comments(p.read_text()) for p in sorted(self.directory.glob("*.h"))}
        for text in headers.values():
            self.defines.update(_DEFINE.findall(text))
        for header, text in headers.items():
            for m in _STRUCT.finditer(text):
                self.structs[m.group("name")] = CStruct(
                    m.group("name"), header, _members(m.group("body"), self.defines, f"{header} {m.group('name')}"))
            for m in _PROTOTYPE.finditer(text):
                first = m.group("args").split(",")[0]
                p = re.match(r"\s*const\s+(\w+)\s*\*", first)
                params = p.group(1) if p and p.group(1) in self.structs else None
                self.prototypes[m.group("name")] = Prototype(m.group("name"), m.group("returns"), params, header,
                                                             "EDGEQ_RESTRICT" in m.group("args"))

    # -- files ----------------------------------------------------------------------------
    def path(self, file: str) -> Path:
        """The source of a shipped file (kernel sources of 16x8 kernels are in ``s16/``)."""
        path = self.directory / file
        return path if path.exists() else self.directory / "s16" / file

    def includes(self, file: str) -> list[str]:
        """The edgeq files ``file`` includes with ``#include "..."``."""
        return _INCLUDE.findall(strip_comments(self.path(file).read_text()))

    def headers_needed(self, files: Iterable[str]) -> list[str]:
        """Every header that ``files`` include, directly or through other headers (sorted)."""
        seen: set[str] = set()
        todo = [h for f in files for h in self.includes(f)]
        while todo:
            header = todo.pop()
            if header not in seen:
                seen.add(header)
                todo.extend(self.includes(header))
        return sorted(seen)

    def define(self, name: str) -> int:
        return int(self.defines[name])

    # -- the interface of one kernel ---------------------------------------------------------
    def prototype(self, function: str) -> Prototype:
        try:
            return self.prototypes[function]
        except KeyError:
            raise KernelInterfaceError(f"internal error: no kernel header declares {function}()") from None

    def check_fields(self, struct: str, fields: list[Field], who: str) -> list[Field]:
        """``fields`` in the member order of ``struct``, after checking that they are exactly its
        members, nested structs and array lengths included.  ``who`` names the lowering."""
        s = self.structs[struct]
        given = [name for name, _ in fields]
        missing = [m for m in s.names() if m not in given]
        unknown = [f for f in given if f not in s.names()]
        if missing or unknown or len(set(given)) != len(given):
            raise KernelInterfaceError(
                f"internal error: {who} fills {struct} ({s.header}) with other fields than it has: "
                f"missing {missing}, unknown {unknown}" + (", some twice" if len(set(given)) != len(given) else ""))
        values = dict(fields)
        ordered = []
        for m in s.members:
            value = values[m.name]
            if m.ctype in self.structs:
                if not is_struct_value(value):
                    raise KernelInterfaceError(f"internal error: {who}: {struct}.{m.name} is a {m.ctype}, "
                                           f"given {value!r}")
                value = self.check_fields(m.ctype, value, who)
            elif m.array is not None and (not isinstance(value, (list, tuple)) or len(value) != m.array):
                raise KernelInterfaceError(f"internal error: {who}: {struct}.{m.name} is an array of {m.array}, "
                                       f"given {value!r}")
            ordered.append((m.name, value))
        return ordered


@functools.lru_cache(maxsize=None)
def kernel_api() -> KernelApi:
    """The interface of the shipped kernels (read once)."""
    return KernelApi(KERNEL_DIR)


def max_dims() -> int:
    """How many dimensions the strided kernels take (EDGEQ_MAX_DIMS)."""
    return kernel_api().define("EDGEQ_MAX_DIMS")


@dataclass(frozen=True)
class Kernel:
    """One C kernel function and the source files a build needs for it.

    ``files`` may name several sources: a wrapper that picks a specialised path ships with the
    files of its paths (a scratch-buffer size would be one more field here)."""
    function: str
    files: tuple[str, ...]

    @property
    def prototype(self) -> Prototype:
        return kernel_api().prototype(self.function)

    @property
    def params(self) -> str | None:
        """Its parameter struct type (None: it takes plain arguments)."""
        return self.prototype.params

    @property
    def header(self) -> str:
        """The API header that declares it (NAME.c includes it)."""
        return self.prototype.header

    @property
    def overlap_safe(self) -> bool:
        """May its output overlap its input (no pointer parameter is ``restrict``)?  The kernel
        then keeps its op's traversal order (``OpDef.traversal``)."""
        return not self.prototype.restrict

    @property
    def returns_status(self) -> bool:
        """Does it return non-zero on an input TFLite's kernel rejects?"""
        return self.prototype.returns == "int"


def kernel(function: str, *files: str) -> Kernel:
    """The kernel ``function``, defined in ``files`` (kernel sources a build ships for it)."""
    return Kernel(function, files)
