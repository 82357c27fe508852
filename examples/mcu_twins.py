"""Twins of TensorFlow Lite Micro's two example models, for the Cortex-M benchmark (issue 14/15).

Same layer shapes as TFLM's int8 examples, random deterministic weights (Kaiming init,
non-trivial batch norm, like ``examples.models``), realistic random data:

* ``person_detect``: TFLM's person_detection model, MobileNetV1 alpha 0.25 on a 96x96x1 grayscale
  image, 2 classes: a 3x3 stride-2 conv to 8 channels, 13 depthwise-separable blocks (3x3
  depthwise + 1x1 pointwise, ReLU6), a 3x3 average pool over the final 3x3x256, a 1x1 conv to 2
  classes, softmax.  7.16 M MACs.  Data: grayscale crops of scikit-learn's sample photos at random
  positions and scales.
* ``micro_speech``: TFLM's micro_speech model: a 49x40x1 log-mel spectrogram (30 ms windows,
  20 ms hop, 40 mel channels), a 10x8 stride-2 conv to 8 channels (ReLU) -> 25x20x8, a fully
  connected layer to 4 classes, softmax.  Data: espeak-ng words placed in a 1 s noisy window.

Padding: TFLite's SAME padding is asymmetric where it has to be (stride 2 on an even size: 0
before, 1 after; micro_speech's rows: 4 before, 5 after), torch's is symmetric.  The twins pad
symmetrically with the padding that gives TFLM's output shapes (1 for the stride-2 3x3 layers,
(5, 3) for micro_speech's conv): same shapes, same MACs, the windows shifted by one row/column.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

try:
    from .models import _build, conv_bn
except ImportError:   # loaded as a file: its folder is on sys.path
    from models import _build, conv_bn

__all__ = ["TWINS", "TFLM_FIGURES", "twin_data", "person_detect", "micro_speech"]

# (output channels at alpha 1, stride) of MobileNetV1's 13 depthwise-separable blocks
_MBV1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
                (1024, 2), (1024, 1)]


class PersonDetect(nn.Module):
    def __init__(self, alpha: float = 0.25, n_classes: int = 2) -> None:
        super().__init__()
        cin = int(32 * alpha)
        layers: list[nn.Module] = [conv_bn(1, cin, 3, stride=2, padding=1, act=nn.ReLU6)]
        for c, s in _MBV1_BLOCKS:
            cout = int(c * alpha)
            layers.append(conv_bn(cin, cin, 3, stride=s, padding=1, groups=cin, act=nn.ReLU6))
            layers.append(conv_bn(cin, cout, 1, act=nn.ReLU6))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(3)
        self.classifier = nn.Conv2d(cin, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.classifier(self.pool(self.features(x)))
        return torch.softmax(torch.flatten(x, 1), dim=1)


class MicroSpeech(nn.Module):
    def __init__(self, n_classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, (10, 8), stride=2, padding=(5, 3))
        self.relu = nn.ReLU()
        self.fc = nn.Linear(25 * 20 * 8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(x))
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


def person_detect() -> nn.Module:
    """TFLM person_detection twin, input (1, 96, 96) grayscale in [0, 1], 2 class probabilities."""
    return _build(PersonDetect, 21)


def micro_speech() -> nn.Module:
    """TFLM micro_speech twin, input (1, 49, 40) log-mel features, 4 class probabilities."""
    return _build(MicroSpeech, 22)


TWINS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "person_detect": (person_detect, (1, 96, 96)),
    "micro_speech": (micro_speech, (1, 49, 40)),
}

#: TFLite Micro's figures for its own int8 models of the same architectures, quoted from issue 14
#: and 15: guest instructions per inference on QEMU mps2-an386 (Cortex-M4) counted between two
#: markers by a TCG plugin of the same kind as edgeq's, TFLM release build; arena_used_bytes
#: (input and output tensors included), measured on the emulated Cortex-M4.
TFLM_FIGURES: dict[str, dict[str, int]] = {
    "person_detect": {"cmsis_nn_instructions": 22_929_265, "reference_instructions": 95_646_079,
                      "arena_bytes": 82_308, "macs": 7_160_000},
    "micro_speech": {"cmsis_nn_instructions": 1_495_500, "reference_instructions": 9_308_778,
                     "arena_bytes": 6_836},
}


# --------------------------------------------------------------------------------------------
# data

def _person_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """Grayscale 96x96 crops in [0, 1] of scikit-learn's two sample photos (random position,
    scale 96..320 pixels, horizontal flips)."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_sample_images

    photos = [img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
              for img in load_sample_images().images]
    out = np.empty((n, 1, 96, 96), np.float32)
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        size = int(rng.integers(96, 321))
        y0 = int(rng.integers(0, photo.shape[0] - size + 1))
        x0 = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = photo[y0:y0 + size, x0:x0 + size]
        img = zoom(crop, 96.0 / size, order=1)[:96, :96]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        out[i, 0] = np.clip(img, 0.0, 1.0)
    return out


def _speech_features(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 1, 49, 40) log-mel features (30 ms window, 20 ms hop, 40 bands, 16 kHz): espeak-ng
    words at a random offset in 1 s of noise, or noise alone; scaled to roughly [-1, 1]."""
    from .datasets import log_mel, speak

    words = ("yes", "no", "up", "down", "go", "stop", "left", "right")
    voices = ("en", "en-us", "en-gb-x-rp")
    out = np.empty((n, 1, 49, 40), np.float32)
    rendered: dict[tuple[str, str, int], np.ndarray] = {}
    for i in range(n):
        signal = rng.standard_normal(16000) * 10 ** rng.uniform(-3.0, -2.0)
        if rng.random() < 0.85:
            key = (words[int(rng.integers(len(words)))], voices[int(rng.integers(len(voices)))],
                   int(rng.integers(3)))
            if key not in rendered:
                rendered[key] = speak(key[0], key[1], 140 + 30 * key[2], 50)
            speech = rendered[key][:16000] * 10 ** rng.uniform(-0.6, 0.0)
            start = int(rng.integers(0, 16000 - len(speech) + 1))
            signal[start:start + len(speech)] += speech
        lm = log_mel(signal, 16000, window_s=0.030, hop_s=0.020, n_mels=40, fmin=125.0, fmax=7500.0)
        out[i, 0] = (lm + 7.0) / 7.0
    return out


def twin_data(name: str, n: int, seed: int) -> np.ndarray:
    """Deterministic float32 inputs (n, *input shape) of a twin."""
    if name not in TWINS:
        raise KeyError(f"unknown twin {name!r}; known: {sorted(TWINS)}")
    rng = np.random.default_rng(seed)
    if name == "person_detect":
        return _person_images(n, rng)
    return _speech_features(n, rng)
