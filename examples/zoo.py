"""The op-coverage test zoo (issue 7): five small architectures built from the operator set
real edge models use. Random, deterministic weights (Kaiming init, non-trivial batch norm),
like ``examples.models``.

* ``mobilenet_v3_se``: MobileNetV3-small style: hardswish, inverted residuals with
  squeeze-and-excitation (global pool -> 1x1 -> ReLU -> 1x1 -> hardsigmoid -> multiply).
* ``detector_two_heads``: a detector-style CNN: a two-scale backbone, nearest upsampling and a
  concat, then a box-regression head (4 values per anchor, permuted to anchors-last) and a
  class-score head (sigmoid).
* ``tiny_unet``: an encoder-decoder with skip connections (concat), a transposed-convolution
  upsampling path (ConvTranspose2d 2x2 stride 2 + batch norm + ReLU) and a nearest upsampling.
* ``audio_conv1d``: a 1-D conv classifier on the raw waveform (strided conv1d, batch norm,
  max pooling, global average).
* ``resnet_permute_head``: a ResNet block stack whose head permutes NCHW -> NHWC before
  flattening into the classifier (torch's flattened order must be kept exactly).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:
    from .models import _build, conv_bn
except ImportError:   # loaded as a file (`edgeq build examples/zoo.py:factory`): its folder is on sys.path
    from models import _build, conv_bn

__all__ = ["ZOO", "zoo_data", "mobilenet_v3_se", "detector_two_heads", "tiny_unet", "audio_conv1d",
           "resnet_permute_head"]


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(ch, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidualSE(nn.Module):
    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, se: bool, hs: bool) -> None:
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        self.expand = conv_bn(cin, mid, 1, act=act) if mid != cin else nn.Identity()
        self.dw = conv_bn(mid, mid, k, stride=stride, padding=k // 2, groups=mid, act=act)
        self.se = SqueezeExcite(mid, max(8, mid // 4)) if se else nn.Identity()
        self.project = conv_bn(mid, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3SE(nn.Module):
    # (kernel, expanded, out, SE, hardswish, stride): the first blocks of MobileNetV3-small
    CONFIG = [(3, 16, 16, True, False, 2), (3, 48, 24, False, False, 2), (3, 56, 24, False, False, 1),
              (5, 64, 32, True, True, 2), (5, 96, 32, True, True, 1)]

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, stride=2, padding=1, act=nn.Hardswish)]
        cin = 16
        for k, mid, cout, se, hs, s in self.CONFIG:
            layers.append(InvertedResidualSE(cin, mid, cout, k, s, se, hs))
            cin = cout
        layers.append(conv_bn(cin, 96, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(96, 64), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class DetectorTwoHeads(nn.Module):
    def __init__(self, n_classes: int = 3, anchors: int = 2) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, 3, stride=2, padding=1)
        self.c2 = conv_bn(16, 24, 3, stride=2, padding=1)
        self.c3 = conv_bn(24, 32, 3, stride=2, padding=1)
        self.lateral = conv_bn(32, 24, 1)
        self.fuse = conv_bn(48, 32, 3, padding=1)
        self.box = nn.Conv2d(32, anchors * 4, 1)
        self.cls = nn.Conv2d(32, anchors * n_classes, 1)
        self.anchors, self.n_classes = anchors, n_classes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f2 = self.c2(self.stem(x))
        f3 = self.c3(f2)
        up = F.interpolate(self.lateral(f3), scale_factor=2, mode="nearest")
        f = self.fuse(torch.cat([f2, up], dim=1))
        boxes = self.box(f).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4)
        scores = torch.sigmoid(self.cls(f)).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.n_classes)
        return boxes, scores


class TinyUNet(nn.Module):
    def __init__(self, cin: int = 1, n_out: int = 2) -> None:
        super().__init__()
        self.enc1 = nn.Sequential(conv_bn(cin, 8, 3, padding=1), conv_bn(8, 8, 3, padding=1))
        self.enc2 = nn.Sequential(conv_bn(8, 16, 3, padding=1), conv_bn(16, 16, 3, padding=1))
        self.bottom = conv_bn(16, 32, 3, padding=1)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(32, 16, 2, stride=2, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        nn.init.kaiming_normal_(self.up2[0].weight, nonlinearity="relu")   # _build's init skips it
        self.dec2 = conv_bn(32, 16, 3, padding=1)
        self.up1 = conv_bn(16, 8, 1)
        self.dec1 = conv_bn(16, 8, 3, padding=1)
        self.out = nn.Conv2d(8, n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottom(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([e2, self.up2(b)], 1))
        d1 = self.dec1(torch.cat([e1, F.interpolate(self.up1(d2), scale_factor=2, mode="nearest")], 1))
        return self.out(d1)


def conv1d_bn(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU())


class AudioConv1d(nn.Module):
    def __init__(self, n_classes: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv1d_bn(1, 16, 31, stride=4), nn.MaxPool1d(4),
            conv1d_bn(16, 24, 9), nn.MaxPool1d(4),
            conv1d_bn(24, 32, 9), nn.MaxPool1d(2),
            conv1d_bn(32, 32, 5))
        self.fc = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(-1))


class ResNetPermuteHead(nn.Module):
    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        from .models import ResBlock
        self.stem = conv_bn(3, 16, 3, padding=1)
        self.blocks = nn.Sequential(ResBlock(16, 16, 1), ResBlock(16, 24, 2), ResBlock(24, 32, 2))
        self.fc = nn.Linear(4 * 4 * 32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(x.permute(0, 2, 3, 1), 1))


def mobilenet_v3_se() -> nn.Module:
    return _build(MobileNetV3SE, 11)


def detector_two_heads() -> nn.Module:
    return _build(DetectorTwoHeads, 12)


def tiny_unet() -> nn.Module:
    return _build(TinyUNet, 13)


def audio_conv1d() -> nn.Module:
    return _build(AudioConv1d, 14)


def resnet_permute_head() -> nn.Module:
    return _build(ResNetPermuteHead, 15)


ZOO: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mobilenet_v3_se": (mobilenet_v3_se, (3, 32, 32)),
    "detector_two_heads": (detector_two_heads, (3, 32, 32)),
    "tiny_unet": (tiny_unet, (1, 32, 32)),
    "audio_conv1d": (audio_conv1d, (1, 2048)),
    "resnet_permute_head": (resnet_permute_head, (3, 16, 16)),
}


def zoo_data(name: str, n: int, seed: int) -> np.ndarray:
    """Deterministic inputs: uniform [0, 1] pixels for image models, a noisy sum of tones for
    the waveform model."""
    shape = (n, *ZOO[name][1])
    rng = np.random.default_rng(seed)
    if name == "audio_conv1d":
        t = np.arange(shape[-1]) / 8000.0
        f = rng.uniform(100, 2000, (n, 1, 3))
        a = rng.uniform(0.1, 0.5, (n, 1, 3))
        wave = (a[..., None] * np.sin(2 * np.pi * f[..., None] * t)).sum(axis=2)
        return (wave + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    return rng.random(shape).astype(np.float32)
