"""edgeq.targets.c.emit: a build ships only the files its kernels need, each identical to the
package's copy; NAME.c includes the API headers of the kernels it calls; a lowering that does
not fill its struct exactly fails at generation time."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from c_target_helpers import example, prepare_model
from edgeq.targets.c.cheaders import KernelInterfaceError, kernel_api
from edgeq.targets.c.emit import generate, write
from edgeq.targets.c.lower import LOWERINGS, Lowering


def test_a_build_ships_only_what_its_kernels_include() -> None:
    p = example("lenet_digits")
    model = generate(p.graph, "digits")
    api = kernel_api()
    shipped = {f for f in model.files if f.startswith("edgeq_")}
    assert shipped == {*model.kernel_files, *model.header_files}
    # the headers: those NAME.c and the kernel sources include, directly or not
    source = model.files["digits.c"]
    included = re.findall(r'#include "(edgeq_\w+\.h)"', source)
    assert included == sorted(included) and set(model.header_files) == set(included) | set(
        api.headers_needed([*model.kernel_files, *included]))
    # every kernel NAME.c calls is declared by a header it includes
    for fn in set(re.findall(r"\b(edgeq_\w+_s(?:8|16))\(", source)):
        assert api.prototype(fn).header in included
    # nothing for softmax or elementwise kernels in a model without them
    assert shipped.isdisjoint({"edgeq_softmax_support.h", "edgeq_add_support.h", "edgeq_support_s16.h"})
    assert {"edgeq_types.h", "edgeq_support.h"} <= shipped
    # shipped verbatim: one copy serves every model of this edgeq version
    for f in shipped:
        assert model.files[f] == api.path(f).read_text()
    readme = model.files["README.md"]
    assert "identical for one edgeq version" in readme and "keep one copy of each" in readme
    for f in shipped:
        assert f"`{f}`" in readme


def test_softmax_ships_its_support_header_and_a_status() -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(8, 4), nn.Softmax(dim=-1)).eval()
    rng = np.random.default_rng(0)
    p = prepare_model("softmax", net, [(8,)], [rng.standard_normal((16, 8)).astype(np.float32)],
                      [rng.standard_normal((2, 8)).astype(np.float32)])
    model = generate(p.graph, "m")
    assert "edgeq_softmax_support.h" in model.files
    assert "    int status;" in model.files["m.c"] and "return status;" in model.files["m.c"]


def test_an_incomplete_lowering_fails_naming_struct_and_lowering(monkeypatch: pytest.MonkeyPatch) -> None:
    p = example("lenet_digits")
    entry = LOWERINGS["max_pool2d"]

    def without_act_max(layer) -> None:
        call = layer.call

        def call_dropping(kernel, fields=None, args=None, suffix=""):
            return call(kernel, [f for f in fields if f[0] != "act_max"], args, suffix)
        layer.call = call_dropping
        entry.build(layer)

    monkeypatch.setitem(LOWERINGS, "max_pool2d", Lowering("max_pool2d", without_act_max, entry.kernels,
                                                          entry.int16_kernels))
    with pytest.raises(KernelInterfaceError, match=r"the max_pool2d lowering .*edgeq_max_pool2d_s8.* fills "
                                               r"edgeq_pool2d_params \(edgeq_pool2d.h\).*missing \['act_max'\]"):
        generate(p.graph, "digits")


def test_a_lowering_calls_only_the_kernels_its_entry_names(monkeypatch: pytest.MonkeyPatch) -> None:
    p = example("lenet_digits")
    entry = LOWERINGS["max_pool2d"]
    monkeypatch.setitem(LOWERINGS, "max_pool2d", Lowering("max_pool2d", entry.build, ()))
    with pytest.raises(KernelInterfaceError, match="calls edgeq_max_pool2d_s8.*does not name"):
        generate(p.graph, "digits")


def test_write_makes_readable_files(tmp_path: Path) -> None:
    p = example("lenet_digits")
    model = generate(p.graph, "digits")
    paths = write(model, tmp_path)
    assert [x.name for x in paths] == sorted(model.files)
    assert all(x.stat().st_mode & 0o777 == 0o644 for x in paths)
