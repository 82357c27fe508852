"""Reference PyTorch models used to exercise the edgeq toolchain.

Every factory returns a module in eval() mode with deterministic weights and
with BatchNorm statistics/affine parameters set to non-trivial values, so that
batch-norm folding is really tested (fresh BN layers are an identity and would
hide folding bugs).  Weights use Kaiming-normal init so activations keep a
sane magnitude through deep stacks, which keeps int8 ranges meaningful.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MODELS",
    "ds_cnn",
    "fc_autoencoder",
    "lenet_digits",
    "mlp_digits",
    "mobilenet_v1_025",
    "mobilenet_v2_blocks",
    "resnet8",
    "synthetic_data",
]


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


def conv_bn(cin: int, cout: int, k: int | tuple[int, int], stride: int = 1,
            padding: int | tuple[int, int] = 0, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (no bias, BN provides it) + BN + optional activation."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class LeNetDigits(nn.Module):
    """Small CNN for the 8x8 scikit-learn digits."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 8, 3, padding=1), nn.MaxPool2d(2),
            conv_bn(8, 16, 3, padding=1), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 32), nn.ReLU(),
            nn.Dropout(0.1), nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MlpDigits(nn.Module):
    """Fully connected classifier for flattened digits."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 64), nn.ReLU(),
            nn.Linear(64, 32), nn.ReLU(),
            nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DSCNN(nn.Module):
    """MLPerf Tiny keyword-spotting depthwise-separable CNN."""

    def __init__(self, n_classes: int = 12, ch: int = 64) -> None:
        super().__init__()
        self.stem = conv_bn(1, ch, (10, 4), stride=2, padding=(5, 1))
        blocks: list[nn.Module] = []
        for _ in range(4):
            blocks.append(conv_bn(ch, ch, 3, padding=1, groups=ch))
            blocks.append(conv_bn(ch, ch, 1))
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(ch, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.blocks(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class ResBlock(nn.Module):
    """Two 3x3 convs with a residual add (1x1 strided shortcut if needed)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride=stride, padding=1)
        self.conv2 = conv_bn(cout, cout, 3, padding=1, act=None)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image-classification ResNet-8 (CIFAR-10 sized)."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16, 3, padding=1)
        self.stack1 = ResBlock(16, 16, 1)
        self.stack2 = ResBlock(16, 32, 2)
        self.stack3 = ResBlock(32, 64, 2)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stack3(self.stack2(self.stack1(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# (output channels at alpha=1, stride) for the 13 depthwise-separable blocks.
_MBV1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
                (1024, 2), (1024, 1)]


class MobileNetV1(nn.Module):
    """MobileNetV1 with a width multiplier (MLPerf Tiny VWW uses 0.25)."""

    def __init__(self, alpha: float = 0.25, n_classes: int = 2) -> None:
        super().__init__()
        cin = int(32 * alpha)
        layers: list[nn.Module] = [conv_bn(3, cin, 3, stride=2, padding=1)]
        for c, s in _MBV1_BLOCKS:
            cout = int(c * alpha)
            layers.append(conv_bn(cin, cin, 3, stride=s, padding=1, groups=cin))
            layers.append(conv_bn(cin, cout, 1))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.fc(self.dropout(x))


class FcAutoencoder(nn.Module):
    """MLPerf Tiny anomaly-detection dense autoencoder (640-dim log-mel)."""

    def __init__(self, dim: int = 640, hidden: int = 128,
                 bottleneck: int = 8) -> None:
        super().__init__()
        widths = [dim, hidden, hidden, hidden, hidden, bottleneck,
                  hidden, hidden, hidden, hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block; the expansion conv is skipped when t == 1."""

    def __init__(self, cin: int, cout: int, t: int, stride: int) -> None:
        super().__init__()
        mid = cin * t
        layers: list[nn.Module] = []
        if t != 1:
            layers.append(conv_bn(cin, mid, 1, act=nn.ReLU6))
        layers.append(conv_bn(mid, mid, 3, stride=stride, padding=1,
                              groups=mid, act=nn.ReLU6))
        layers.append(conv_bn(mid, cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2Blocks(nn.Module):
    """A few MobileNetV2 inverted-residual blocks ending in softmax."""

    CONFIGS = [(1, 16, 1), (4, 24, 2), (4, 24, 1), (4, 32, 2), (4, 32, 1)]

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, padding=1, act=nn.ReLU6)]
        cin = 16
        for t, c, s in self.CONFIGS:
            layers.append(InvertedResidual(cin, c, t, s))
            cin = c
        layers.append(conv_bn(cin, 64, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return torch.softmax(self.fc(x), dim=1)


# --------------------------------------------------------------------------
# Deterministic initialisation
# --------------------------------------------------------------------------


def _init_weights(model: nn.Module) -> None:
    """Kaiming-normal conv/linear weights, small biases: keeps activations O(1)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.05)


@torch.no_grad()
def _randomize_batchnorm(model: nn.Module) -> None:
    """Give every BN layer non-identity statistics so folding is exercised."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n) * 0.1)
            m.running_var.copy_(torch.empty(n).uniform_(0.5, 2.0))
            m.weight.copy_(torch.empty(n).uniform_(0.5, 1.5))
            m.bias.copy_(torch.randn(n) * 0.1)


def _build(cls: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Construct under a fixed seed without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls()
        _init_weights(model)
        _randomize_batchnorm(model)
    return model.eval()


# --------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------


def lenet_digits() -> nn.Module:
    """CNN for scikit-learn digits, input (1, 8, 8), returns logits."""
    return _build(LeNetDigits, 1)


def mlp_digits() -> nn.Module:
    """MLP for flattened digits, input (64,), returns logits."""
    return _build(MlpDigits, 2)


def ds_cnn() -> nn.Module:
    """Keyword-spotting DS-CNN, input (1, 49, 10) MFCC, 12 classes."""
    return _build(DSCNN, 3)


def resnet8() -> nn.Module:
    """CIFAR-10 ResNet-8, input (3, 32, 32), 10 classes."""
    return _build(ResNet8, 4)


def mobilenet_v1_025() -> nn.Module:
    """Visual-wake-words MobileNetV1 x0.25, input (3, 96, 96), 2 classes."""
    return _build(MobileNetV1, 5)


def fc_autoencoder() -> nn.Module:
    """Anomaly-detection autoencoder, input (640,), output (640,)."""
    return _build(FcAutoencoder, 6)


def mobilenet_v2_blocks() -> nn.Module:
    """Small MobileNetV2, input (3, 32, 32), ends with softmax over 10."""
    return _build(MobileNetV2Blocks, 7)


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "lenet_digits": (lenet_digits, (1, 8, 8)),
    "mlp_digits": (mlp_digits, (64,)),
    "ds_cnn": (ds_cnn, (1, 49, 10)),
    "resnet8": (resnet8, (3, 32, 32)),
    "mobilenet_v1_025": (mobilenet_v1_025, (3, 96, 96)),
    "fc_autoencoder": (fc_autoencoder, (640,)),
    "mobilenet_v2_blocks": (mobilenet_v2_blocks, (3, 32, 32)),
}

# Models whose inputs look like features (MFCC / log-mel) rather than pixels.
_NORMAL_INPUT = {"ds_cnn", "fc_autoencoder"}


def synthetic_data(name: str, n: int, seed: int) -> np.ndarray:
    """Deterministic float32 inputs of shape (n, *input_shape) for a model.

    Image-like models get uniform [0, 1] pixels, feature models get N(0, 1).
    """
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    shape = (n, *MODELS[name][1])
    rng = np.random.default_rng(seed)
    if name in _NORMAL_INPUT:
        data = rng.standard_normal(shape)
    else:
        data = rng.random(shape)
    return data.astype(np.float32)
