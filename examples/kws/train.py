"""Train the DS-CNN keyword spotter on the espeak-ng keyword set and write its graph and data (cached).

Produces, under ``build/models/kws/`` (or ``<out-root>/kws/``):
  model.pt2                              torch.export program, batch 1, input (1, 1, 49, 10) MFCC
  calib.npy                              400 training samples picked with a fixed seed
  eval.npy, eval_labels.npy              the test set (voices never heard in training), seeded order
  meta.json                              float accuracy, training time, cache key (written last)

The model is ``examples.models.ds_cnn`` (MLPerf Tiny's DS-CNN, 64 channels, 12 classes:
silence, unknown, yes, no, up, down, left, right, on, off, stop, go). Features are standardised
per MFCC coefficient with the training set's statistics (examples/datasets.py ``kws``), so the
model's input is roughly N(0, 1). Seeded and single-threaded: reruns give the same files.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from examples.datasets import Dataset, KwsConfig, espeak_version, kws  # noqa: E402
from examples.fashion_mnist import train as helpers  # noqa: E402
from examples.fashion_mnist.train import cached_prepare, fit, source_hash  # noqa: E402
from examples.models import ds_cnn  # noqa: E402

NAME = "kws"
DEFAULT_OUT_ROOT = REPO_ROOT / "build" / "models"
N_CALIB = 400
SEED = 0
EPOCHS = 10
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 1e-3
LABEL_SMOOTHING = 0.1
MIN_ACCURACY = 0.80


def prepare(out_root: str | Path = DEFAULT_OUT_ROOT, force: bool = False, verbose: bool = False,
            cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Generate (or load) the keyword set, train (or reuse) the DS-CNN; returns paths (model,
    calib, eval, eval_labels, meta, dir) plus float_accuracy, train_s and cached."""
    config = KwsConfig()

    def make() -> tuple[nn.Module, Dataset, np.ndarray, float]:
        data = kws(config, cache_dir=cache_dir, verbose=verbose)
        t0 = time.perf_counter()
        model = fit(ds_cnn(), data.x_train, data.y_train, epochs=EPOCHS, batch=BATCH, lr=LR, seed=SEED,
                    weight_decay=WEIGHT_DECAY, label_smoothing=LABEL_SMOOTHING)
        return model, data, data.calibration(N_CALIB, SEED), time.perf_counter() - t0

    key = source_hash(Path(__file__), Path(helpers.__file__), config.key(espeak_version()))
    return cached_prepare(NAME, out_root, key, force, verbose, make)


def main(argv: list[str] | None = None) -> int:
    return helpers.run_cli(NAME, __doc__, prepare, MIN_ACCURACY, DEFAULT_OUT_ROOT, argv)


if __name__ == "__main__":
    sys.exit(main())
