"""Train a 2-layer GRU keyword spotter on the espeak-ng keyword set (the DS-CNN's data) and write
its graph and data (cached).

Produces, under ``build/models/kws_gru/`` (or ``<out-root>/kws_gru/``): model.pt2 (input
(1, 1, 49, 10) MFCC, the frames read as a sequence), calib.npy, eval.npy, eval_labels.npy and
meta.json, like ``examples/kws/train.py``. The model is ``examples.sequence_zoo``'s
``GruKeywordSpotter`` (hidden 64) behind a view of the MFCC image as 49 frames of 10
coefficients. Seeded and single-threaded: reruns give the same files."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from examples.datasets import Dataset, KwsConfig, espeak_version, kws  # noqa: E402
from examples.fashion_mnist import train as helpers  # noqa: E402
from examples.fashion_mnist.train import cached_prepare, fit, source_hash  # noqa: E402
from examples.sequence_zoo import GruKeywordSpotter  # noqa: E402

NAME = "kws_gru"
DEFAULT_OUT_ROOT = REPO_ROOT / "build" / "models"
N_CALIB = 400
SEED = 0
EPOCHS = 12
BATCH = 64
LR = 4e-3
WEIGHT_DECAY = 1e-3
LABEL_SMOOTHING = 0.1
MIN_ACCURACY = 0.75


class KwsGru(nn.Module):
    """(N, 1, 49, 10) MFCC images, read as 49 frames by a GRU keyword spotter."""

    def __init__(self) -> None:
        super().__init__()
        self.net = GruKeywordSpotter()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x[:, 0])


def prepare(out_root: str | Path = DEFAULT_OUT_ROOT, force: bool = False, verbose: bool = False,
            cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Generate (or load) the keyword set, train (or reuse) the GRU; returns paths (model, calib,
    eval, eval_labels, meta, dir) plus float_accuracy, train_s and cached."""
    config = KwsConfig()

    def make() -> tuple[nn.Module, Dataset, np.ndarray, float]:
        data = kws(config, cache_dir=cache_dir, verbose=verbose)
        torch.manual_seed(SEED)
        t0 = time.perf_counter()
        model = fit(KwsGru(), data.x_train, data.y_train, epochs=EPOCHS, batch=BATCH, lr=LR, seed=SEED,
                    weight_decay=WEIGHT_DECAY, label_smoothing=LABEL_SMOOTHING)
        return model, data, data.calibration(N_CALIB, SEED), time.perf_counter() - t0

    key = source_hash(Path(__file__), Path(helpers.__file__), config.key(espeak_version()))
    return cached_prepare(NAME, out_root, key, force, verbose, make)


def main(argv: list[str] | None = None) -> int:
    return helpers.run_cli(NAME, __doc__, prepare, MIN_ACCURACY, DEFAULT_OUT_ROOT, argv)


if __name__ == "__main__":
    sys.exit(main())
