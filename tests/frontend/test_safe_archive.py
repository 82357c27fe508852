"""Vetting .pt2 archives before torch reads them (edgeq.frontend.safe_archive).

Real models pass and load as torch loads them; the allowlist is exactly what their pickles
need; every crafted payload (tests/bad_inputs/crafted.py) is refused before it can run, while
plain torch.export.load runs it (so these tests could fail)."""
import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from edgeq.errors import EdgeqError, UnsafeModelError
from edgeq.frontend import load_model, safe_archive
from examples.models import MODELS
from examples.zoo import ZOO
from tests.bad_inputs import crafted

ROOT = Path(__file__).resolve().parents[2]
#: payloads torch 2.13 itself executes on load (or on run_decompositions)
TORCH_RUNS = ["sample_inputs", "sample_inputs_valid", "pickled_weight", "opaque_constant", "legacy_layout",
              "sympy_expression", "stack_global"]


class WithBuffersAndConstants(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor([2.0, 3.0]))
        self.register_buffer("steps", torch.tensor([1, 2], dtype=torch.int64))
        self.const = torch.ones(2)
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return self.lin(x * self.scale + self.const) + idx.float().sum()


FAST_MODELS = ("lenet_digits", "mlp_digits", "tiny_unet")


def _models(names):
    for name, (factory, shape) in {**MODELS, **ZOO}.items():
        if names is None or name in names:
            yield name, factory(), (torch.zeros(1, *shape),)
    yield "buffers_constants", WithBuffersAndConstants(), (torch.zeros(1, 2), torch.tensor([[1, 2]]))


def _pickles(archive: bytes):
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        for name in z.namelist():
            blob = z.read(name)
            if blob.startswith(b"PK"):
                with zipfile.ZipFile(io.BytesIO(blob)) as inner:
                    yield from (inner.read(n) for n in inner.namelist() if n.endswith(".pkl"))


@pytest.mark.parametrize("names", [pytest.param(FAST_MODELS, id="digits-unet-buffers"),
                                   pytest.param(None, id="every-example-model", marks=pytest.mark.slow)])
def test_real_models_pass_load_like_torch_and_need_only_the_allowlist(names, tmp_path):
    seen = set()
    for name, model, example in _models(names):
        path = tmp_path / f"{name}.pt2"
        torch.export.save(torch.export.export(model.eval(), example), path)
        for pkl in _pickles(path.read_bytes()):
            seen |= set(safe_archive.pickle_globals(pkl, name))
        ep = load_model(str(path))
        torch.testing.assert_close(ep.module()(*example), model(*example))
    assert seen <= safe_archive.ALLOWED_GLOBALS
    assert {("torch._utils", "_rebuild_tensor_v2"), ("collections", "OrderedDict"), ("torch", "FloatStorage"),
            ("torch", "LongStorage")} <= seen


@pytest.fixture(scope="module")
def payloads(tmp_path_factory):
    w = tmp_path_factory.mktemp("payloads")
    base = crafted.tiny_model_pt2(w / "base.pt2")
    return w, {name: fn(base, w / f"{name}.pt2", w / f"{name}.marker") for name, fn in crafted.PAYLOADS.items()}


@pytest.mark.parametrize("name", sorted(crafted.PAYLOADS))
def test_payload_is_refused_before_it_runs(name, payloads):
    w, files = payloads
    with pytest.raises(UnsafeModelError, match="--trust-model"):
        load_model(str(files[name]))
    assert not (w / f"{name}.marker").exists()


@pytest.mark.parametrize("name", TORCH_RUNS)
def test_plain_torch_runs_the_payload(name, payloads, tmp_path):
    """The payloads are real: torch.export.load (and run_decompositions) executes them."""
    w, files = payloads
    marker = w / f"{name}.marker"
    code = (f"import torch\ntry:\n    torch.export.load({str(files[name])!r}).run_decompositions()\n"
            "except Exception:\n    pass\n")
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, cwd=tmp_path)
    assert marker.exists()
    marker.unlink()


def test_refusal_names_the_member_and_the_global(payloads):
    _, files = payloads
    with pytest.raises(UnsafeModelError) as e:
        load_model(str(files["pickled_weight"]))
    assert "data/weights/weight_0" in str(e.value) and "eval" in str(e.value)


def test_compiled_code_and_duplicate_members_are_refused(payloads, tmp_path):
    w, _ = payloads
    with pytest.raises(UnsafeModelError, match="AOTInductor"):
        load_model(str(crafted.aoti_member(w / "base.pt2", tmp_path / "aoti.pt2")))
    dup = tmp_path / "dup.pt2"
    with zipfile.ZipFile(w / "base.pt2") as src, zipfile.ZipFile(dup, "w") as z:
        for n in src.namelist():
            z.writestr(n, src.read(n))
        with pytest.warns(UserWarning):
            z.writestr(src.namelist()[0], b"other bytes")
    with pytest.raises(UnsafeModelError, match="twice"):
        load_model(str(dup))


def test_pickle_scanner_follows_stack_globals_and_refuses_extensions():
    class Evil:
        def __reduce__(self):
            return (print, ("x",))
    assert ("builtins", "print") in set(safe_archive.pickle_globals(pickle.dumps(Evil(), protocol=4), "p"))
    assert ("builtins", "print") in set(safe_archive.pickle_globals(pickle.dumps(Evil(), protocol=2), "p"))
    ext = b"\x80\x02\x82\x01)R."           # EXT1 code 1, EMPTY_TUPLE, REDUCE
    with pytest.raises(UnsafeModelError, match="extension"):
        list(safe_archive.pickle_globals(ext, "p"))
    computed = b"\x80\x04]\x8c\x04exec\x93."     # STACK_GLOBAL whose module is not a string constant
    with pytest.raises(UnsafeModelError, match="computes"):
        list(safe_archive.pickle_globals(computed, "p"))
    with pytest.raises(EdgeqError, match="not a valid pickle"):
        list(safe_archive.pickle_globals(b"\x80\x04\x8c", "p"))


@pytest.mark.parametrize("expr, ok", [
    ("Symbol('s31', positive=True, integer=True)", True),
    ("Mul(Max(Integer(1), Add(Symbol('s16', positive=True, integer=True), Integer(-2))), Integer(2))", True),
    ("((s0 - 3)//2) + 1", True),
    ("__import__('os').system('x')", False),
    ("Symbol('s0').__class__", False),
    ("open(s0)", False),
    ('Symbol("s0")', False),
    ("Symbol('s1', __class__=True)", False),
])
def test_shape_expressions(expr, ok):
    assert safe_archive._safe_expression(expr) is ok


@pytest.mark.parametrize("target, ok", [("torch.ops.aten.conv2d.default", True), ("_operator.getitem", True),
                                        ("torch.ops.aten.__class__", False), ("torch.serialization.os.system", False),
                                        ("_operator.call", False), ("builtins.exec", False)])
def test_graph_targets(target, ok):
    assert safe_archive._safe_target(target) is ok
