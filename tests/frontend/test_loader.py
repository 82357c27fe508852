"""The MODEL argument (edgeq.frontend.loader): labels without paths, what is known of the inputs
before tracing, factories, and refusals with the way out."""
from pathlib import Path

import pytest
import torch

from edgeq.errors import EdgeqError
from edgeq.frontend.loader import input_signature, load_model, model_label

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "digits" / "lenet.pt2"


class Two(torch.nn.Module):
    def forward(self, tokens, mask, scale=1.0):
        return tokens * mask * scale


def test_model_label_never_holds_a_path():
    assert model_label(str(LENET)) == "lenet.pt2"
    assert model_label("/some/where/models.py:make") == "models.py:make"
    assert model_label("pkg.models:make") == "pkg.models:make"
    assert model_label(Two()) == "Two"


def test_input_signature_of_a_program_and_of_a_module():
    sig = input_signature(load_model(str(LENET)))
    assert sig.count == 1 and sig.shapes == [(1, 1, 8, 8)] and sig.dtypes == ["float32"]
    ids = torch.export.export(torch.nn.Embedding(10, 4), (torch.zeros(1, 3, dtype=torch.int64),))
    assert input_signature(ids).dtypes == ["int64"]
    mod = input_signature(Two())
    assert mod.names == ["tokens", "mask"] and mod.count == 2 and mod.shapes is None


def test_factory_module_and_errors(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import torch\ndef make():\n    return torch.nn.Linear(2, 2).train()\n"
                 "def broken():\n    return [][1]\n")
    model = load_model(f"{f}:make")
    assert isinstance(model, torch.nn.Linear) and not model.training
    with pytest.raises(EdgeqError, match=r"raised IndexError: list index out of range \(m.py, line 5\)"):
        load_model(f"{f}:broken")
    with pytest.raises(EdgeqError, match="is not a .pt2 file"):
        load_model(str(f))
    with pytest.raises(EdgeqError, match="cannot interpret model"):
        load_model("nothing-here")
