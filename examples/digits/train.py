"""Train the digits demo models and write their exported graphs and data.

Produces, under the repo root (or --out-root):
  examples/digits/lenet.pt2, examples/digits/mlp.pt2     (torch.export, batch 1)
  calibration/digits/calib.npy, eval.npy, eval_labels.npy (NCHW (N, 1, 8, 8))
  calibration/digits/calib_flat.npy, eval_flat.npy        (flattened (N, 64))

Everything is seeded so reruns give byte-identical .npy files; files are
written atomically so a concurrent reader never sees a partial file.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from examples.models import lenet_digits, mlp_digits  # noqa: E402

N_CALIB = 200
SPLIT_SEED = 0
EPOCHS = 20
BATCH = 32
LR = 3e-3


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1] as (N, 1, 8, 8) float32, stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=0.25, random_state=SPLIT_SEED, stratify=y)
    return x_tr, x_te, y_tr, y_te


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    """Plain Adam + cross-entropy; seeded shuffling for reproducibility."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(xt), generator=gen).split(BATCH):
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an eval-mode model."""
    pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """Current umask (mkstemp files are 0600; give them normal permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_npy(path: Path, arr: np.ndarray) -> None:
    """Atomic np.save (np.save output is deterministic for equal arrays)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write(path, buf.getvalue())


def save_export(path: Path, model: nn.Module, example: torch.Tensor) -> None:
    """torch.export the eval model at batch size 1 and save it atomically."""
    ep = torch.export.export(model.eval(), (example,))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    atomic_write(path, buf.getvalue())


def fit_and_export(name: str, model: nn.Module, x_tr: np.ndarray,
                   y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                   out: Path) -> float:
    """Train one model, export it, return its float test accuracy."""
    t0 = time.perf_counter()
    train(model, x_tr, y_tr, seed=0)
    acc = accuracy(model, x_te, y_te)
    save_export(out, model, torch.from_numpy(x_te[:1]))
    print(f"{name}: float test accuracy {acc:.4f} "
          f"(train+export {time.perf_counter() - t0:.1f}s) -> {out}")
    return acc


def main(argv: list[str] | None = None) -> int:
    """Train LeNet and MLP on digits; write .pt2 models and calibration data."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-root", type=Path, default=REPO_ROOT,
                    help="repository root to write outputs under")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    x_tr, x_te, y_tr, y_te = load_split()
    calib_idx = np.sort(np.random.default_rng(SPLIT_SEED).choice(
        len(x_tr), N_CALIB, replace=False))
    calib = np.ascontiguousarray(x_tr[calib_idx])
    flat = lambda a: np.ascontiguousarray(a.reshape(len(a), -1))  # noqa: E731

    data_dir = args.out_root / "calibration" / "digits"
    save_npy(data_dir / "calib.npy", calib)
    save_npy(data_dir / "eval.npy", np.ascontiguousarray(x_te))
    save_npy(data_dir / "eval_labels.npy", y_te)
    save_npy(data_dir / "calib_flat.npy", flat(calib))
    save_npy(data_dir / "eval_flat.npy", flat(x_te))

    model_dir = args.out_root / "examples" / "digits"
    acc_cnn = fit_and_export("lenet", lenet_digits(), x_tr, y_tr, x_te, y_te,
                             model_dir / "lenet.pt2")
    acc_mlp = fit_and_export("mlp", mlp_digits(), flat(x_tr), y_tr,
                             flat(x_te), y_te, model_dir / "mlp.pt2")
    print(f"total time {time.perf_counter() - t0:.1f}s "
          f"({len(x_tr)} train / {len(x_te)} test samples)")
    if min(acc_cnn, acc_mlp) < 0.95:
        print("error: accuracy below 0.95", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
