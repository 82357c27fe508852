"""The rule for ``--name`` (the C targets' symbol prefix and file names), checked before any work.

A name becomes ``NAME.h``, ``NAME.c``, ``NAME_weights.c`` beside edgeq's kernels, compiled with
that folder on the include path, and prefixes every public C symbol (``NAME_invoke``). So it
must be a C identifier, no C keyword, no name of a C or common system header (``stdint.h``
would shadow the real one) and none of edgeq's own files, and short enough for every C compiler
to tell the symbols apart."""
from __future__ import annotations

import re

from .errors import EdgeqError

MAX_LENGTH = 31     # C99 guarantees 31 significant characters in external identifiers

C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int
long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local alignas alignof bool constexpr false nullptr static_assert thread_local true typeof
typeof_unqual
""".split())

#: C standard headers and the common system ones a toolchain's headers include themselves
SYSTEM_HEADERS = frozenset("""
assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign
stdarg stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath
threads time uchar wchar wctype alloca endian fcntl features malloc memory newlib pthread sched
strings unistd ieeefp reent syscall
""".split())

#: files edgeq writes or compiles beside the model (kernels are all edgeq_*)
EDGEQ_FILES = frozenset({"harness", "semihost", "startup", "README", "readme"})


def check_c_name(name: object) -> None:
    """Raise EdgeqError stating the rule when ``name`` cannot be the C model name."""
    rule = (f"--name must be a C identifier (a letter, then letters, digits or '_'; at most {MAX_LENGTH} "
            "characters), not a C keyword, a system header or one of edgeq's files (edgeq_*)")
    if not isinstance(name, str) or not name:
        raise EdgeqError(f"--name is empty; {rule}")
    shown = name if len(name) <= 40 else name[:37] + "..."
    if len(name) > MAX_LENGTH:
        raise EdgeqError(f"--name '{shown}' has {len(name)} characters; {rule}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise EdgeqError(f"--name '{shown}' is not a C identifier; {rule}")
    if name in C_KEYWORDS:
        raise EdgeqError(f"--name '{name}' is a C keyword; {rule}")
    if name.lower() in SYSTEM_HEADERS:
        raise EdgeqError(f"--name '{name}' would shadow the system header <{name}.h>; {rule}")
    if name in EDGEQ_FILES or name.lower() == "edgeq" or name.lower().startswith("edgeq_"):
        raise EdgeqError(f"--name '{name}' collides with edgeq's own C files; {rule}")
