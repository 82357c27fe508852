"""The bad-input suite's material, made once per session: crafted and broken model files,
broken factories and data, malformed target profiles (see crafted.py for the payloads)."""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bad_inputs import crafted

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "calibration" / "digits"

FACTORIES = {
    "good.py": "import sys\nsys.path.insert(0, {root!r})\nfrom examples.models import lenet_digits\n"
               "def make():\n    return lenet_digits()\nvalue = 3\n",
    "raises.py": "def make():\n    raise ValueError('weights file missing')\n",
    "syntax.py": "def make(:\n    pass\n",
    "importfail.py": "import no_such_module_for_edgeq\ndef make():\n    pass\n",
    "needsargs.py": "def make(channels, depth=2):\n    pass\n",
    "returns_int.py": "def make():\n    return 3\n",
    "data_source.py": "import numpy as np\ndef batches():\n    rng = np.random.default_rng(0)\n"
                      "    for _ in range(4):\n        yield rng.random((8, 1, 8, 8), dtype=np.float32)\n"
                      "def broken():\n    raise RuntimeError('dataset not mounted')\n",
}

PROFILES = {
    "bad_toml": "[target\nformat = 'onnx'\n",
    "unknown_format": "[target]\nformat = 'coreml'\n",
    "empty": "",
    "no_table": "format = 'onnx'\n",
    "tiny_budget": "[target]\nformat = 'c'\nops = ['conv2d', 'linear', 'max_pool2d', 'reshape', 'clamp']\n"
                   "[quantizer]\nlinear_per_channel = true\n[budget]\nflash_bytes = 1000\nram_bytes = 100\n"
                   "[compiler]\ncc = 'gcc'\ncflags = ['-O1', '-std=c99']\nldflags = []\n",
    "no_compiler": "[target]\nformat = 'c'\nops = ['conv2d', 'linear', 'max_pool2d', 'reshape', 'clamp']\n"
                   "[quantizer]\nlinear_per_channel = true\n"
                   "[compiler]\ncc = 'edgeq-no-such-cc'\ncflags = []\nldflags = []\n",
}


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(4, 3)
        self.b = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


class DigitsLike(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = torch.nn.Conv2d(1, 2, 3)
        self.f = torch.nn.Linear(72, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(torch.relu(self.c(x)).flatten(1))


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    base = crafted.tiny_model_pt2(w / "base.pt2")
    for name, fn in crafted.PAYLOADS.items():
        fn(base, w / f"{name}.pt2", w / f"{name}.marker")
    crafted.aoti_member(base, w / "aoti.pt2")
    _broken_models(w, base)
    _models(w)
    _factories(w)
    _data(w)
    _profiles(w)
    return w


def _broken_models(w: Path, base: Path) -> None:
    (w / "empty.pt2").write_bytes(b"")
    data = base.read_bytes()
    (w / "truncated.pt2").write_bytes(data[: len(data) // 2])
    (w / "random.pt2").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with zipfile.ZipFile(w / "foreign.pt2", "w") as z:
        z.writestr("readme.txt", "not a model")
    torch.jit.save(torch.jit.script(DigitsLike()), str(w / "torchscript.pt2"))
    torch.save(DigitsLike().state_dict(), w / "torchsave.pt2")
    (w / "checkpoint.pth").write_bytes((w / "torchsave.pt2").read_bytes())
    (w / "a_dir.pt2").mkdir()


def _models(w: Path) -> None:
    from torch.export import Dim
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                            torch.nn.Flatten())
    x = torch.zeros(2, 1, 8, 8)
    hw = {"input": {2: Dim("h", min=4, max=64), 3: Dim("w", min=4, max=64)}}
    torch.export.save(torch.export.export(m, (x,), dynamic_shapes=hw), w / "dyn_hw.pt2")
    torch.export.save(torch.export.export(m, (x,), dynamic_shapes={"input": {0: Dim("batch")}}), w / "dyn_batch.pt2")
    torch.export.save(torch.export.export(TwoInputs(), (torch.zeros(1, 4), torch.zeros(1, 4))), w / "two.pt2")
    torch.export.save(torch.export.export(DigitsLike().eval(), (torch.zeros(1, 1, 8, 8),)), w / "digits_like.pt2")
    (w / "copy").mkdir()
    (w / "copy" / "digits_like.pt2").write_bytes((w / "digits_like.pt2").read_bytes())


def _factories(w: Path) -> None:
    for name, text in FACTORIES.items():
        (w / name).write_text(text.format(root=str(ROOT)))


def _data(w: Path) -> None:
    cal = np.load(DIGITS / "calib.npy")
    np.save(w / "cal.npy", cal[:32])
    (w / "cal.csv").write_text("\n".join(",".join(f"{v:.3f}" for v in row) for row in cal[:8].reshape(8, -1)))
    np.save(w / "tmp_npy.npy", cal[:8])
    (w / "npy_named.npz").write_bytes((w / "tmp_npy.npy").read_bytes())
    np.savez(w / "tmp_npz.npz", x=cal[:8])
    (w / "npz_named.npy").write_bytes((w / "tmp_npz.npz").read_bytes())
    huge = cal[:8].copy()
    huge[2, 0, 1, 1] = 3.4e38
    np.save(w / "huge.npy", huge)
    np.save(w / "neg_huge.npy", -huge)
    np.savez(w / "empty.npz")
    np.savez(w / "wrong_keys.npz", p=np.zeros((4, 4), np.float32), q=np.zeros((4, 4), np.float32),
             r=np.zeros((4, 4), np.float32))
    np.save(w / "two_x.npy", np.zeros((4, 4), np.float32))
    (w / "data_dir").mkdir()
    np.save(w / "labels_range.npy", np.full(32, 10, np.int64))
    np.save(w / "labels_negative.npy", -np.ones(32, np.int64))
    np.save(w / "labels_ok.npy", np.zeros(32, np.int64))
    np.save(w / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(w / "ints.npy", np.zeros((8, 1, 8, 8), np.int64))
    (w / "pickle.npz").write_bytes(pickle.dumps({"x": 1}))


def _profiles(w: Path) -> None:
    for name, text in PROFILES.items():
        d = w / "profiles" / name
        d.mkdir(parents=True)
        (d / f"{name}.toml").write_text(text)
    (w / "profiles" / "none").mkdir()
    (w / "outside.toml").write_text("[target]\nformat = 'onnx'\n")


def write_old_build(out: Path, files: dict[str, str]) -> None:
    """A directory that looks like an earlier edgeq build with these artifact files."""
    out.mkdir(parents=True)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    report = {"edgeq_version": "0.1.0", "artifacts": [{"path": p} for p in files], "plots": []}
    (out / "report.json").write_text(json.dumps(report))
    (out / "report.md").write_text("# old\n")
