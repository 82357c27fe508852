"""C spelling of names and values: identifiers, integer and float literals, constant arrays,
designated initializers, text safe in comments."""
from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np

C_KEYWORDS = frozenset({
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum",
    "extern", "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict",
    "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
    "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
})

#: Bytes of each element type the generated arrays use.
CTYPE_BYTES = {"int8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "int64_t": 8}

#: A designated initializer: (member, value); a value is an int, a C expression (str), a list
#: of numbers (an array member) or a list of Fields (a nested struct member).
Field = tuple[str, Any]


def c_identifier(text: str, default: str = "model") -> str:
    """A C identifier from ``text``: other characters become '_', no leading digit, no keyword."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(text)).strip("_") or default
    if ident[0].isdigit():
        ident = f"{default}_{ident}"
    if ident in C_KEYWORDS:
        ident = f"{ident}_"
    return ident


def model_name(options: dict | None) -> str:
    """The C name of the model (the ``name`` build option, ``model`` by default)."""
    return c_identifier((options or {}).get("name", "model"))


def comment(text: Any) -> str:
    """Text safe inside a C block comment (ASCII, no comment terminators)."""
    text = str(text).encode("ascii", "replace").decode("ascii")
    return text.replace("*/", "* /").replace("/*", "/ *")


def c_int(value: int) -> str:
    """An integer literal; INT32_MIN is spelled so that it is an int32, not a long."""
    value = int(value)
    return "(-2147483647 - 1)" if value == -(1 << 31) else str(value)


def c_float(value: float) -> str:
    """A float literal that round-trips the float32 value."""
    f = float(np.float32(value))
    text = np.format_float_positional(np.float32(f), unique=True, trim="0") \
        if 1e-4 <= abs(f) < 1e7 or f == 0.0 else np.format_float_scientific(np.float32(f), unique=True)
    if "." not in text and "e" not in text:
        text += ".0"
    if text.endswith("."):
        text += "0"
    return text + "f"


def shape_text(shape: Iterable[int]) -> str:
    """``1x28x28x1``: a shape in comments."""
    return "x".join(str(d) for d in shape)


#: The attribute macro of arrays the kernels read a word at a time (defined in NAME_weights.c).
WORD_ALIGNED = "EDGEQ_WORD_ALIGNED"


def c_array(ctype: str, name: str, values: np.ndarray, per_line: int, aligned: bool = False) -> str:
    """Definition of a ``const`` array, ``per_line`` right-aligned values a line (``aligned``:
    word-aligned, ``WORD_ALIGNED``)."""
    vals = [c_int(v) for v in np.asarray(values).reshape(-1).tolist()]
    width = max((len(v) for v in vals), default=1)
    lines = ["    " + ", ".join(v.rjust(width) for v in vals[i:i + per_line]) + ","
             for i in range(0, len(vals), per_line)]
    body = "\n".join(lines)
    attr = f" {WORD_ALIGNED}" if aligned else ""
    return f"const {ctype} {name}[{len(vals)}]{attr} = {{\n{body}\n}};\n"


def is_struct_value(value: Any) -> bool:
    """Is an initializer value a nested struct (a list of fields)?"""
    return isinstance(value, list) and bool(value) and isinstance(value[0], tuple)


def initializer_lines(fields: list[Field], indent: str = "    ") -> list[str]:
    """Designated initializers, one member a line (values aligned), nested structs indented."""
    width = max((len(name) for name, value in fields if not is_struct_value(value)), default=0)
    lines = []
    for name, value in fields:
        if is_struct_value(value):
            lines.append(f"{indent}.{name} = {{")
            lines.extend(initializer_lines(value, indent + "    "))
            lines.append(f"{indent}}},")
            continue
        if isinstance(value, (list, tuple)):
            value = "{" + ", ".join(c_int(x) for x in value) + "}"
        elif isinstance(value, (int, np.integer)):
            value = c_int(value)
        lines.append(f"{indent}.{name.ljust(width)} = {value},")
    return lines


class Names:
    """Unique identifiers within one namespace (a base name taken twice gets a suffix)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.used: set[str] = set(reserved)

    def get(self, base: str) -> str:
        name, i = base, 1
        while name in self.used:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name
