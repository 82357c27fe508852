"""Train a small CNN on Fashion-MNIST and write its exported graph and data (cached).

Produces, under ``build/models/fashion_mnist/`` (or ``<out-root>/fashion_mnist/``):
  model.pt2                              torch.export program, batch 1, input (1, 1, 28, 28) in [0, 1]
  calib.npy                              500 training images picked with a fixed seed, (N, 1, 28, 28)
  eval.npy, eval_labels.npy              the 10,000 test images and labels, in a seeded random order
  meta.json                              float accuracy, training time, cache key (written last)

The data come from Debian's ``dataset-fashion-mnist`` (see examples/datasets.py). Training is
seeded and single-threaded, so reruns give the same files; everything is written atomically, and
a rerun with an unchanged script and data set only reads ``meta.json``.

This module also holds the training and caching helpers that examples/kws/train.py reuses.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from examples.datasets import Dataset, fashion_mnist  # noqa: E402
from examples.digits.train import accuracy, atomic_write, save_export, save_npy  # noqa: E402

NAME = "fashion_mnist"
DEFAULT_OUT_ROOT = REPO_ROOT / "build" / "models"
N_CALIB = 500
SEED = 0
EPOCHS = 3
BATCH = 128
LR = 5e-3
MIN_ACCURACY = 0.88


def conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class FashionCNN(nn.Module):
    """Three 3x3 convs (two strided), max pool, two dense layers: about 0.6 M MACs."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu(1, 16, 2), conv_bn_relu(16, 32, 2),
                                      conv_bn_relu(32, 32, 1), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 3 * 3, 64), nn.ReLU(),
                                        nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------------------------
# Helpers shared with examples/kws/train.py
# --------------------------------------------------------------------------------------------

@contextmanager
def single_thread() -> Iterator[None]:
    """torch on one thread (much faster on 2 shared cores), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int, lr: float,
        seed: int, weight_decay: float = 0.0, label_smoothing: float = 0.0) -> nn.Module:
    """AdamW with a one-cycle schedule and cross-entropy; seeded shuffling."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(xt) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(batch):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def batched_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, chunk: int = 1000) -> float:
    correct = sum(accuracy(model, x[s:s + chunk], y[s:s + chunk]) * len(y[s:s + chunk])
                  for s in range(0, len(y), chunk))
    return float(correct / len(y))


def source_hash(*parts: Any) -> str:
    """Cache key: the calling training script's source plus whatever identifies its data."""
    h = hashlib.sha256()
    for p in parts:
        h.update(Path(p).read_bytes() if isinstance(p, Path) else repr(p).encode())
        h.update(b"\0")
    h.update(torch.__version__.encode())
    return h.hexdigest()[:16]


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on ``directory/.lock``: concurrent prepare() calls train only once."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def cached_prepare(name: str, out_root: str | Path, key: str, force: bool, verbose: bool,
                   make: Callable[[], tuple[nn.Module, Dataset, np.ndarray, float]]) -> dict[str, Any]:
    """Return the paths of ``<out_root>/<name>/`` files, training with ``make()`` unless
    meta.json already records ``key``. ``make`` returns (model, data set, calibration, train s)."""
    out = Path(out_root) / name
    paths = {"dir": out, "model": out / "model.pt2", "calib": out / "calib.npy", "eval": out / "eval.npy",
             "eval_labels": out / "eval_labels.npy", "meta": out / "meta.json"}
    with locked(out):
        meta = _read_meta(paths["meta"])
        files_ok = all(p.is_file() for k, p in paths.items() if k != "dir")
        if not force and meta.get("key") == key and files_ok:
            return {**paths, **meta, "cached": True}
        with single_thread():
            model, data, calib, train_s = make()
            acc = batched_accuracy(model, data.x_test, data.y_test)
            # the test set in a seeded random order: any prefix (benchmarks' --quick) is a fair sample
            order = np.random.default_rng(SEED).permutation(len(data.y_test))
            save_npy(paths["calib"], calib)
            save_npy(paths["eval"], np.ascontiguousarray(data.x_test[order]))
            save_npy(paths["eval_labels"], np.ascontiguousarray(data.y_test[order]))
            save_export(paths["model"], model, torch.from_numpy(data.x_test[:1]))
        meta = {"name": name, "key": key, "float_accuracy": acc, "train_s": round(train_s, 2),
                "train_samples": int(len(data.x_train)), "eval_samples": int(len(data.x_test)),
                "calib_samples": int(len(calib)), "input_shape": list(data.x_test.shape[1:]),
                "classes": list(data.classes)}
        atomic_write(paths["meta"], (json.dumps(meta, indent=2) + "\n").encode())
        if verbose:
            print(f"{name}: float test accuracy {acc:.4f} ({len(data.x_train)} train / "
                  f"{len(data.x_test)} test, trained in {train_s:.1f}s) -> {out}")
        return {**paths, **meta, "cached": False}


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------

def _data_identity() -> list:
    """Names and sizes of the IDX files: enough to notice another copy of the data set."""
    from examples.datasets import FASHION_MNIST_DIR
    return sorted((p.name, p.stat().st_size) for p in FASHION_MNIST_DIR.glob("*.gz"))


def prepare(out_root: str | Path = DEFAULT_OUT_ROOT, force: bool = False, verbose: bool = False) -> dict[str, Any]:
    """Train (or reuse) the Fashion-MNIST CNN; returns paths (model, calib, eval, eval_labels,
    meta, dir) plus float_accuracy, train_s and cached."""
    def make() -> tuple[nn.Module, Dataset, np.ndarray, float]:
        data = fashion_mnist()
        t0 = time.perf_counter()
        torch.manual_seed(SEED)
        model = fit(FashionCNN(), data.x_train, data.y_train, epochs=EPOCHS, batch=BATCH, lr=LR, seed=SEED)
        return model, data, data.calibration(N_CALIB, SEED), time.perf_counter() - t0

    key = source_hash(Path(__file__), _data_identity())
    return cached_prepare(NAME, out_root, key, force, verbose, make)


def run_cli(name: str, doc: str, prepare_fn: Callable[..., dict[str, Any]], min_accuracy: float,
            default_out_root: Path, argv: list[str] | None = None) -> int:
    """The command line both training scripts share: train (or reuse the cache), check accuracy."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out-root", type=Path, default=default_out_root,
                    help=f"writes <out-root>/{name}/ (default build/models)")
    ap.add_argument("--force", action="store_true", help="retrain even if the cached files match")
    args = ap.parse_args(argv)
    try:
        info = prepare_fn(args.out_root, force=args.force, verbose=True)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if info["cached"]:
        print(f"{name}: cached, float test accuracy {info['float_accuracy']:.4f} -> {info['dir']}")
    if info["float_accuracy"] < min_accuracy:
        print(f"error: accuracy below {min_accuracy}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(NAME, __doc__, prepare, MIN_ACCURACY, DEFAULT_OUT_ROOT, argv)


if __name__ == "__main__":
    sys.exit(main())
