"""The models and data of benchmarks/build_time.py: the example zoo (examples.models, the MLPerf
Tiny shapes among them, and examples.zoo), the sequence models (examples.sequence_zoo) and the
two models issue 16 measured: a MobileNetV1 a=0.25 on 96x96x1 (64 calibration / 20 eval
samples) and a 3-stage face-detector net (MTCNN O-Net-like: 4 convs + 2 FC on 48x48x3, 100 /
100). Deterministic weights and data."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples import zoo  # noqa: E402
from examples.models import MODELS, MobileNetV1, _build, conv_bn, synthetic_data  # noqa: E402
from examples.sequence_zoo import SEQUENCE_ZOO, sequence_data  # noqa: E402


class MobileNetV1Gray(MobileNetV1):
    """MobileNetV1 a=0.25 on one-channel 96x96 images (MLPerf Tiny VWW on grayscale)."""

    def __init__(self) -> None:
        super().__init__(alpha=0.25, n_classes=2)
        self.features[0] = conv_bn(1, 8, 3, stride=2, padding=1)


class FaceNet(nn.Module):
    """A 3-stage face-detector net (MTCNN O-Net-like): 4 convs with max pooling, FC 256, FC 16
    (2 face scores, 4 box offsets, 10 landmark coordinates)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 2), nn.PReLU(128))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(128 * 2 * 2, 256), nn.PReLU(256), nn.Linear(256, 16))

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.fc(self.features(x))


@dataclass
class BenchModel:
    name: str
    group: str                                   # "zoo", "issue" or "sequence"
    factory: Callable[[], nn.Module]
    data: Callable[[int, int], list[np.ndarray]]   # (n, seed) -> one array per input
    calibration: int
    eval: int


def _image(shape: tuple[int, ...]) -> Callable[[int, int], list[np.ndarray]]:
    return lambda n, seed: [np.random.default_rng(seed).random((n, *shape)).astype(np.float32)]


def models() -> dict[str, BenchModel]:
    out: dict[str, BenchModel] = {}
    for name, (factory, _) in MODELS.items():
        out[name] = BenchModel(name, "zoo", factory, lambda n, s, name=name: [synthetic_data(name, n, s)], 64, 32)
    for name, (factory, _) in zoo.ZOO.items():
        out[name] = BenchModel(name, "zoo", factory, lambda n, s, name=name: [zoo.zoo_data(name, n, s)], 64, 32)
    out["mobilenet_v1_025_96x96x1"] = BenchModel("mobilenet_v1_025_96x96x1", "issue", lambda: _build(MobileNetV1Gray, 5),
                                                 _image((1, 96, 96)), 64, 20)
    out["face_net_48x48x3"] = BenchModel("face_net_48x48x3", "issue", lambda: _build(FaceNet, 21),
                                         _image((3, 48, 48)), 100, 100)
    for name, (factory, _) in SEQUENCE_ZOO.items():
        out[name] = BenchModel(name, "sequence", factory, lambda n, s, name=name: sequence_data(name, n, s), 64, 32)
    return out
