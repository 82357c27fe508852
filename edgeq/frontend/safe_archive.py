"""Look inside a ``.pt2`` before torch does.

``torch.export.load`` unpickles several members of the archive (sample inputs, weights saved
with ``use_pickle``, tensor and opaque constants, legacy layouts, retrying with
``weights_only=False``), loads compiled AOTInductor libraries, resolves graph targets by
attribute path from ``torch`` and hands symbolic shape expressions to ``sympy.sympify`` (an
``eval``). Any of these runs code from the file. So, unless the user trusts the file:

* the archive must have torch.export's layout and nothing else (no compiled code, no legacy
  files), with unique member names under one root folder;
* every member torch will unpickle is scanned opcode by opcode (never loaded): a global outside
  ``ALLOWED_GLOBALS`` (the ones torch needs for plain tensors; found by saving real models,
  see tests/frontend/test_safe_archive.py), an extension code or a computed global is refused,
  naming the member and the global;
* every graph node target must be an aten/prims op or a plain arithmetic operator, and every
  shape expression plain arithmetic on symbols;
* torch then reads a fresh archive rewritten from exactly the bytes that were checked, so a
  zip that two parsers read differently cannot smuggle another member past the check.
"""
from __future__ import annotations

import io
import json
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any, Iterator

from ..errors import EdgeqError, UnsafeModelError

#: (module, name) globals a plain ExportedProgram's pickles need: the one seen in every model
#: saved by torch 2.13 (the digits and zoo models, a model with buffers, constants and an int64
#: input): torch's tensor rebuild function, OrderedDict (a tensor's backward-hook table) and the
#: storage classes, here for every dtype a sample input may have.
ALLOWED_GLOBALS = frozenset({
    ("torch._utils", "_rebuild_tensor_v2"),
    ("collections", "OrderedDict"),
    *(("torch", f"{kind}Storage") for kind in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short",
                                                "Char", "Byte", "Bool")),
})
#: operator-module functions a graph may call (symbolic-size arithmetic, tuple indexing)
ALLOWED_OPERATORS = frozenset({"getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "neg", "pow", "eq",
                               "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_"})
MAX_MEMBER_BYTES = 1 << 31
_MEMBER = re.compile(r"^(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|"
                     r"models/[A-Za-z0-9_.-]+\.json|data/(weights|constants)/[A-Za-z0-9_.-]+|"
                     r"data/sample_inputs/[A-Za-z0-9_.-]+\.pt|extra/[^\x00]+)$")
_OP_TARGET = re.compile(r"^torch\.ops\.(aten|prims)\.[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
#: sympy constructors (torch serializes shapes in sympy's srepr form) and torch's sympy functions
SYMPY_NAMES = frozenset("""
Symbol Integer Rational Float Add Mul Pow Max Min Mod Abs Eq Ne Lt Le Gt Ge StrictLessThan StrictGreaterThan
LessThan GreaterThan Equality Unequality And Or Not true false True False BooleanTrue BooleanFalse FloorDiv
ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv LShift RShift PowByNatural IntTrueDiv
FloatTrueDiv TruncToInt RoundToInt ToFloat Identity floor ceiling
""".split())
#: assumptions in ``Symbol('s0', positive=True, integer=True)``
SYMPY_KEYWORDS = frozenset({"positive", "negative", "nonnegative", "nonpositive", "integer", "real", "finite",
                            "zero", "nonzero", "even", "odd", "rational", "commutative"})
_TOKEN = re.compile(r"\s*(?:(?P<str>'[a-z]+[0-9]*')|(?P<num>[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)|"
                    r"(?P<name>[A-Za-z][A-Za-z0-9]*)(?P<kw>\s*=(?!=))?|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%()<>,&|~^!]))")
_TRUST = "pass --trust-model (API: trust_model=True) only if you trust whoever made the file"


def checked_archive(path: Path, trust_model: bool) -> str | io.BytesIO:
    """What to hand to ``torch.export.load``: the path when trusted, else the checked archive
    rewritten in memory. Foreign or damaged files are refused either way with a clear message."""
    data = _read(path)
    members = _members(path, data)
    prefix = _root(path, members)
    _identify(path, members, prefix, trust_model)
    if trust_model:
        return str(path)
    rel = {name[len(prefix):]: blob for name, blob in members.items()}
    for name in rel:
        if not _MEMBER.match(name):
            raise UnsafeModelError(f"{path.name}: member '{prefix}{name}' is not part of a plain torch.export "
                                   f"program ({_why_member(name)}); refused; {_TRUST}")
    for model in [n[len("models/"):-len(".json")] for n in rel if n.startswith("models/")]:
        _check_model(path, prefix, rel, model)
    return io.BytesIO(_rewrite({prefix + name: blob for name, blob in rel.items()}))


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgeqError(f"cannot read model {path}: {e.strerror}") from None
    if not data:
        raise EdgeqError(f"model {path} is empty (0 bytes); export it again with torch.export.save")
    return data


def _members(path: Path, data: bytes) -> dict[str, bytes]:
    """Every member's bytes, refusing files that are not clean zips."""
    if not data.startswith(b"PK"):
        kind = "a pickle (torch.save's old format)" if data[:1] == b"\x80" else "not a zip archive"
        raise EdgeqError(f"{path} is not a torch.export program ({kind}); save one with "
                         "torch.export.save(torch.export.export(model, example_inputs), path)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise UnsafeModelError(f"{path.name}: the archive names a member twice; refused")
            if any(i.file_size > MAX_MEMBER_BYTES for i in infos):
                raise EdgeqError(f"{path.name}: a member is larger than 2 GiB; edgeq's targets hold far smaller "
                                 "models")
            return {i.filename: z.read(i) for i in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError) as e:
        raise EdgeqError(f"{path} is damaged or not a torch.export program ({e}); export it again with "
                         "torch.export.save") from None


def _root(path: Path, members: dict[str, bytes]) -> str:
    roots = {n.split("/", 1)[0] for n in members}
    if len(roots) != 1 or any("/" not in n or n.startswith("/") or "\\" in n for n in members):
        if "serialized_exported_program.json" in members:
            return ""
        raise EdgeqError(f"{path} is a zip archive but not a torch.export program (its members do not sit under "
                         "one folder); save one with torch.export.save")
    return roots.pop() + "/"


def _identify(path: Path, members: dict[str, bytes], prefix: str, trusted: bool) -> None:
    """Tell torch.export archives from torch.save / TorchScript files and other zips."""
    if prefix == "":
        if not trusted:
            raise UnsafeModelError(f"{path.name} uses torch's legacy export layout, whose members torch unpickles "
                                   f"without checks; save it again with a current torch.export.save, or {_TRUST}")
        return
    names = {n[len(prefix):] for n in members}
    if members.get(prefix + "archive_format", b"").strip() == b"pt2":
        if "models/model.json" not in names:
            raise EdgeqError(f"{path} holds no exported program (no models/model.json); save one with "
                             "torch.export.save")
        return
    if "constants.pkl" in names or any(n.startswith("code/") for n in names):
        raise EdgeqError(f"{path} is a TorchScript file (torch.jit.save), not a torch.export program; export "
                         "the nn.Module with torch.export.export and save it with torch.export.save")
    if "data.pkl" in names:
        raise EdgeqError(f"{path} was written by torch.save (a pickled checkpoint), not torch.export.save; give "
                         "file.py:factory that builds the model and loads the checkpoint, or export it")
    raise EdgeqError(f"{path} is a zip archive but not a torch.export program (no archive_format member); "
                     "save one with torch.export.save")


def _why_member(name: str) -> str:
    if name.startswith("data/aotinductor/"):
        return "compiled AOTInductor code, which torch would load as a shared library"
    if name.startswith(("data/executorch/", "data/mtia/", "xl_model_weights")):
        return "a backend payload edgeq does not read"
    return "an unknown member"


def _check_model(path: Path, prefix: str, rel: dict[str, bytes], model: str) -> None:
    """Everything torch will read for ``models/<model>.json``."""
    graph = _json(path, prefix, rel, f"models/{model}.json")
    _check_graph_json(path, f"{prefix}models/{model}.json", graph)
    _scan_torch_save(path, prefix, rel, f"data/sample_inputs/{model}.pt")
    for kind in ("weights", "constants"):
        legacy = f"data/{kind}/{model}.pt"
        if legacy in rel:
            _scan_torch_save(path, prefix, rel, legacy)
            continue
        config = _json(path, prefix, rel, f"data/{kind}/{model}_{kind}_config.json")
        entries = config.get("config") if isinstance(config, dict) else None
        if not isinstance(entries, dict):
            raise EdgeqError(f"{path.name}: {prefix}data/{kind}/{model}_{kind}_config.json is malformed")
        for fqn, meta in entries.items():
            _check_payload(path, prefix, rel, kind, fqn, meta)


def _check_payload(path: Path, prefix: str, rel: dict[str, bytes], kind: str, fqn: str, meta: Any) -> None:
    if not isinstance(meta, dict) or not isinstance(meta.get("path_name"), str):
        raise EdgeqError(f"{path.name}: the {kind} entry '{fqn}' is malformed")
    name = meta["path_name"]
    member = f"data/{kind}/{name}"
    if kind == "constants" and name.startswith("custom_obj"):
        raise UnsafeModelError(f"{path.name}: constant '{fqn}' ({prefix}{member}) is a TorchScript object that "
                               f"torch would unpickle; edgeq cannot lower it; refused; {_TRUST}")
    if kind == "constants" and name.startswith("opaque_obj"):
        _scan_pickle(path, f"{prefix}{member}", _member(path, prefix, rel, member))
    elif meta.get("use_pickle"):
        _scan_torch_save(path, prefix, rel, member)


def _member(path: Path, prefix: str, rel: dict[str, bytes], name: str) -> bytes:
    if name not in rel:
        raise EdgeqError(f"{path.name}: member {prefix}{name} is missing; the archive is incomplete, export it again")
    return rel[name]


def _json(path: Path, prefix: str, rel: dict[str, bytes], name: str) -> Any:
    try:
        return json.loads(_member(path, prefix, rel, name))
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgeqError(f"{path.name}: {prefix}{name} is not valid JSON ({e}); export the model again") from None


def _scan_torch_save(path: Path, prefix: str, rel: dict[str, bytes], name: str) -> None:
    """A member torch.load reads: a torch.save zip whose data.pkl may only use allowed globals."""
    blob = _member(path, prefix, rel, name)
    where = f"{prefix}{name}"
    if not blob.startswith(b"PK"):
        raise UnsafeModelError(f"{path.name}: {where} is a raw pickle (torch.save's legacy format), which torch "
                               f"unpickles without checks; refused; {_TRUST}")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            names = z.namelist()
            pickles = [n for n in names if n.endswith(".pkl")]
            if len(set(names)) != len(names) or len({n.split("/", 1)[0] for n in names}) != 1 or not pickles:
                raise UnsafeModelError(f"{path.name}: {where} is not a clean torch.save archive; refused; {_TRUST}")
            for inner in pickles:
                _scan_pickle(path, f"{where}/{inner}", z.read(inner))
            rewritten = _rewrite({n: z.read(n) for n in names})
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise EdgeqError(f"{path.name}: {where} is damaged ({e}); export the model again") from None
    rel[name] = rewritten


def _scan_pickle(path: Path, where: str, data: bytes) -> None:
    for module, name in pickle_globals(data, f"{path.name}: {where}"):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeModelError(f"{path.name}: {where} is a pickle that asks for {module}.{name}, which is not "
                                   f"among the tensor types edgeq allows; refused; {_TRUST}")


def pickle_globals(data: bytes, where: str) -> Iterator[tuple[str, str]]:
    """The (module, name) of every global a pickle imports, found by walking its opcodes (the
    pickle is never loaded). Extension codes and globals whose names are computed are refused."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    protocol = 0
    try:
        for op, arg, _ in pickletools.genops(data):
            name = op.name
            if name == "PROTO":
                protocol = arg
            if name in ("EXT1", "EXT2", "EXT4"):
                raise UnsafeModelError(f"{where} uses a pickle extension code (a global edgeq cannot see); refused; "
                                       f"{_TRUST}")
            if name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                yield _as_imported(module, attr, protocol)
            if name == "STACK_GLOBAL":
                attr, module = stack.pop() if stack else None, stack.pop() if stack else None
                if not (isinstance(module, str) and isinstance(attr, str)):
                    raise UnsafeModelError(f"{where} computes the name of a global it imports; refused; {_TRUST}")
                yield _as_imported(module, attr, protocol)
                stack.append(None)
                continue
            _simulate(op, arg, stack, memo)
    except ValueError as e:
        raise EdgeqError(f"{where} is not a valid pickle ({e}); export the model again") from None


def _as_imported(module: str, name: str, protocol: int) -> tuple[str, str]:
    """The global an unpickler imports: protocols 0-2 map Python 2 names (``__builtin__``)."""
    import _compat_pickle
    if protocol < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return module, name


def _simulate(op: pickletools.OpcodeInfo, arg: Any, stack: list[Any], memo: dict[int, Any]) -> None:
    """Track strings through the stack and memo, enough to name STACK_GLOBAL's operands."""
    name = op.name
    if name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = stack[-1] if stack else None
        return
    if name == "MEMOIZE":
        memo[len(memo)] = stack[-1] if stack else None
        return
    if name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo.get(arg))
        return
    if name == "DUP":
        stack.append(stack[-1] if stack else None)
        return
    if pickletools.stackslice in op.stack_before:           # pops down to the last MARK
        while stack and stack[-1] is not pickletools.markobject:
            stack.pop()
        if stack:
            stack.pop()
        before = [s for s in op.stack_before if s not in (pickletools.stackslice, pickletools.markobject)]
    else:
        before = op.stack_before
    for _ in before:
        if stack:
            stack.pop()
    for kind in op.stack_after:
        if kind is pickletools.markobject:
            stack.append(pickletools.markobject)
        elif isinstance(arg, str) and kind in (pickletools.pyunicode, pickletools.pystring):
            stack.append(arg)
        else:
            stack.append(None)


def _check_graph_json(path: Path, where: str, tree: Any) -> None:
    """Node targets and symbolic expressions, anywhere in the serialized program."""
    for key, value in _walk(tree):
        if key == "target" and isinstance(value, str) and not _safe_target(value):
            raise UnsafeModelError(f"{path.name}: {where} calls '{value[:80]}', which is not an aten or prims op; "
                                   f"refused; {_TRUST}")
        if key == "expr_str" and isinstance(value, str) and not _safe_expression(value):
            raise UnsafeModelError(f"{path.name}: {where} holds the shape expression '{value[:80]}', which is not "
                                   f"plain arithmetic (torch would eval it); refused; {_TRUST}")


def _walk(tree: Any) -> Iterator[tuple[str, Any]]:
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                yield k, v
                todo.append(v)
        elif isinstance(node, list):
            todo.extend(node)


def _safe_target(target: str) -> bool:
    if _OP_TARGET.match(target):
        return not any(part.startswith("__") for part in target.split("."))
    module, _, name = target.partition(".")
    return module == "_operator" and name in ALLOWED_OPERATORS


def _safe_expression(expr: str) -> bool:
    """Plain arithmetic on symbols: sympy constructor calls, symbol-name strings, numbers,
    operators and assumption keywords; no attribute access, no other names or strings."""
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            return expr[pos:].strip() == ""
        name = m.group("name")
        if name is not None:
            allowed = SYMPY_KEYWORDS if m.group("kw") else SYMPY_NAMES
            if name not in allowed and not (m.group("kw") is None and re.fullmatch(r"[a-z]+[0-9]+", name)):
                return False
        pos = m.end()
    return True


def _rewrite(members: dict[str, bytes]) -> bytes:
    """A fresh zip of exactly these members (stored, in order)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, blob in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), blob)
    return buf.getvalue()
