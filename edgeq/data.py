"""Loading and checking calibration / eval data (.npy float32 (N, *shape), .npz per input)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import EdgeqError


def load_inputs(path: str | Path, input_names: list[str] | None, what: str = "calibration") -> list[np.ndarray]:
    """One float32 array per model input; .npy is memory-mapped so large sets stream from disk.

    With ``input_names`` None (model not traced yet) the file's arrays come back in order."""
    path = Path(path)
    if not path.is_file():
        raise EdgeqError(f"{what} data file not found: {path}")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if input_names is None:
                    input_names = keys
                if set(input_names) <= set(keys):
                    arrays = [z[k] for k in input_names]
                elif len(keys) == len(input_names):
                    arrays = [z[k] for k in keys]
                else:
                    raise EdgeqError(f"{what} file {path} holds arrays {keys}, but the model has inputs "
                                     f"{input_names}: store one array per input, named after it")
        else:
            arrays = [np.load(path, mmap_mode="r", allow_pickle=False)]
            input_names = input_names if input_names is not None else ["input"]
    except EdgeqError:
        raise
    except (ValueError, OSError) as e:
        raise EdgeqError(f"cannot read {what} data {path}: {e} (expected .npy or .npz written by numpy, "
                         "no pickled objects)") from e
    if len(arrays) != len(input_names):
        raise EdgeqError(f"the model has {len(input_names)} inputs ({', '.join(input_names)}) but {path} "
                         f"holds {len(arrays)} array(s); use an .npz with one array per input")
    return arrays


def check_inputs(arrays: list[np.ndarray], shapes: list[tuple[int, ...]], names: list[str],
                 source: str, what: str = "calibration") -> None:
    """Refuse empty sets, wrong shapes and NaN/Inf, naming the problem and both shapes."""
    counts = {a.shape[0] if a.ndim else 0 for a in arrays}
    for a, shape, name in zip(arrays, shapes, names):
        if a.ndim == 0 or a.shape[0] == 0:
            raise EdgeqError(f"{what} data {source} is empty (shape {a.shape}); give at least one sample "
                             f"of shape {tuple(shape)}")
        if not np.issubdtype(a.dtype, np.floating):
            raise EdgeqError(f"{what} data {source} for input '{name}' has dtype {a.dtype}; "
                             "expected float32 (N, *input_shape)")
        if tuple(a.shape[1:]) != tuple(shape):
            raise EdgeqError(f"{what} data {source} for input '{name}' has samples of shape {tuple(a.shape[1:])} "
                             f"but the model expects {tuple(shape)} (data shape (N, *input_shape), "
                             f"N={a.shape[0]}; image models use torch's NCHW order)")
        for start in range(0, a.shape[0], 4096):
            chunk = np.asarray(a[start:start + 4096])
            if not np.isfinite(chunk).all():
                bad = start + int(np.argwhere(~np.isfinite(chunk).reshape(chunk.shape[0], -1).all(axis=1))[0][0])
                raise EdgeqError(f"{what} data {source} contains NaN or Inf (first in sample {bad}); "
                                 "clean the data before calibrating")
    if len(counts) != 1:
        raise EdgeqError(f"{what} data {source}: inputs have different sample counts {sorted(counts)}")


def load_labels(path: str | Path, n: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise EdgeqError(f"labels file not found: {path}")
    try:
        labels = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise EdgeqError(f"cannot read labels {path}: {e}") from e
    if labels.ndim != 1 or labels.shape[0] != n or not np.issubdtype(labels.dtype, np.integer):
        raise EdgeqError(f"labels {path} have shape {labels.shape} and dtype {labels.dtype}; expected int64 "
                         f"of shape ({n},) to match the eval data")
    return labels.astype(np.int64)
