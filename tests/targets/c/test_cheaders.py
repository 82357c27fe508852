"""edgeq.targets.c.cheaders: the kernel headers read as the one definition of the kernels'
interface (structs, prototypes, includes), and the generation-time check of a lowering's fields."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from c_target_helpers import require_host_cc
from edgeq.targets.c.cheaders import KERNEL_DIR, KernelApi, Member, KernelInterfaceError, kernel_api

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

SAMPLE_TYPES = """\
#ifndef T_H
#define T_H
#include <stdint.h>
#define N_DIMS 4   /* a comment after the value */
/* a window: { not a struct } */
typedef struct {
    int32_t height, width;       /* two members on one line */
    const int16_t *rows, *cols;  // and two pointers
} t_window;
#endif
"""

SAMPLE_API = """\
#include "t_types.h"
typedef struct {
    t_window window;
    int32_t shape[N_DIMS];
    const int8_t *weights;
} t_params;

void t_kernel_s8(const t_params *p, const int8_t *input,
                 int8_t *output);
int t_status_s8(const t_params *p, const int8_t *input, int8_t *output);
void t_plain_s8(const int8_t *input, int8_t *output, int32_t size);
"""


@pytest.fixture
def api(tmp_path: Path) -> KernelApi:
    (tmp_path / "t_types.h").write_text(SAMPLE_TYPES)
    (tmp_path / "t_api.h").write_text(SAMPLE_API)
    (tmp_path / "t_kernel.c").write_text('#include "t_api.h"\n/* #include "not_this.h" */\n')
    return KernelApi(tmp_path)


def test_structs_with_nested_members_arrays_and_pointers(api: KernelApi) -> None:
    window = api.structs["t_window"]
    assert window.header == "t_types.h"
    assert window.members == (Member("height", "int32_t"), Member("width", "int32_t"),
                              Member("rows", "int16_t", pointer=True), Member("cols", "int16_t", pointer=True))
    params = api.structs["t_params"]
    assert params.members == (Member("window", "t_window"), Member("shape", "int32_t", array=4),
                              Member("weights", "int8_t", pointer=True))


def test_prototypes_name_their_struct_header_and_status(api: KernelApi) -> None:
    kernel = api.prototype("t_kernel_s8")
    assert (kernel.returns, kernel.params, kernel.header) == ("void", "t_params", "t_api.h")
    assert api.prototype("t_status_s8").returns == "int"
    assert api.prototype("t_plain_s8").params is None
    with pytest.raises(KernelInterfaceError, match="no kernel header declares t_missing"):
        api.prototype("t_missing")


def test_headers_needed_follow_includes_but_not_comments(api: KernelApi) -> None:
    assert api.includes("t_kernel.c") == ["t_api.h"]
    assert api.headers_needed(["t_kernel.c"]) == ["t_api.h", "t_types.h"]
    assert api.define("N_DIMS") == 4


def test_fields_must_be_exactly_the_struct_members(api: KernelApi) -> None:
    window = [("width", 3), ("height", 2), ("rows", "r"), ("cols", "c")]
    ordered = api.check_fields("t_params", [("weights", "w"), ("shape", [1, 2, 3, 4]), ("window", window)], "test")
    assert [name for name, _ in ordered] == ["window", "shape", "weights"]        # the header's order
    assert [name for name, _ in ordered[0][1]] == ["height", "width", "rows", "cols"]
    with pytest.raises(KernelInterfaceError, match=r"the conv lowering fills t_params \(t_api.h\).*missing \['weights'\]"):
        api.check_fields("t_params", [("window", window), ("shape", [1, 2, 3, 4])], "the conv lowering")
    with pytest.raises(KernelInterfaceError, match=r"t_window \(t_types.h\).*missing \['cols'\], unknown \['col'\]"):
        api.check_fields("t_params", [("window", [*window[:3], ("col", "c")]), ("shape", [1, 2, 3, 4]),
                                      ("weights", "w")], "test")
    with pytest.raises(KernelInterfaceError, match=r"t_params.shape is an array of 4"):
        api.check_fields("t_params", [("window", window), ("shape", [1, 2]), ("weights", "w")], "test")
    with pytest.raises(KernelInterfaceError, match=r"t_params.window is a t_window"):
        api.check_fields("t_params", [("window", 5), ("shape", [1, 2, 3, 4]), ("weights", "w")], "test")
    with pytest.raises(KernelInterfaceError, match="some twice"):
        api.check_fields("t_window", [*window, ("rows", "again")], "test")


def test_shipped_headers_parse() -> None:
    api = kernel_api()
    assert api.define("EDGEQ_MAX_DIMS") == 6
    # every member type is an integer type or a struct of the headers
    for struct in api.structs.values():
        for m in struct.members:
            assert m.ctype in api.structs or m.ctype in ("int8_t", "int16_t", "uint16_t", "int32_t", "int64_t"), \
                (struct.name, m)
    # kernels are declared in the API headers, not in the types or support headers
    support = {"edgeq_types.h", "edgeq_support.h", "edgeq_support_s16.h", "edgeq_softmax_support.h",
               "edgeq_add_support.h", "edgeq_index_support.h", "edgeq_sigmoid_support.h"}
    assert {p.header for p in api.prototypes.values()}.isdisjoint(support)
    assert support <= {p.name for p in KERNEL_DIR.glob("*.h")}


def test_every_header_compiles_alone_on_both_compilers(tmp_path: Path) -> None:
    """Each header includes what it needs (-Werror -pedantic, C99 and C++)."""
    require_host_cc()
    compilers = [["gcc", *STRICT]]
    if shutil.which("arm-none-eabi-gcc"):
        compilers.append(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", *STRICT])
    for header in sorted(KERNEL_DIR.glob("*.h")):
        src = tmp_path / "one.c"
        src.write_text(f'#include "{header.name}"\n#include "{header.name}"\nint edgeq_header_test;\n')
        for cc in compilers:
            proc = subprocess.run([*cc, f"-I{KERNEL_DIR}", "-c", str(src), "-o", str(tmp_path / "one.o")],
                                  capture_output=True, text=True)
            assert proc.returncode == 0 and not proc.stderr, f"{cc[0]} {header.name}:\n{proc.stderr}"
    if shutil.which("g++"):
        src = tmp_path / "all.cpp"
        src.write_text("".join(f'#include "{h.name}"\n' for h in sorted(KERNEL_DIR.glob("*.h"))))
        proc = subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{KERNEL_DIR}", "-c",
                               str(src), "-o", str(tmp_path / "all.o")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
