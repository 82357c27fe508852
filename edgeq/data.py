"""Calibration and eval data: reading every accepted form and checking it against the model.

Accepted (``edgeq.build`` arguments; the CLI takes the file forms and ``file.py:callable``):

* ``.npy`` (N, *input_shape) for one input, memory-mapped; ``.npz`` with one array per input;
* a numpy array or torch tensor (N, *input_shape); a dict {input name: array} (labels under
  ``label``/``labels``/``target``/``targets``); a list of arrays, one per input, for models
  with several inputs;
* a ``torch.utils.data.DataLoader``, a ``Dataset`` (yields samples) or any iterable of arrays,
  tensors, tuples or dicts (batches, or samples when their rank is one less than the input's);
  tuples carry the inputs in order, and a last element beyond the model's inputs is the label;
* ``file.py:callable`` / ``module:callable`` returning any of these.

Streamed sources are read exactly once, in order, and written batch by batch to a temporary
file that is memory-mapped (``Spill``): memory does not grow with the set (disk does, by the
set's size, in the build's temporary folder), one-shot generators work, and a DataLoader that
shuffles or augments gives calibration's two passes the same samples."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from . import user_code
from .errors import EdgeqError

LABEL_KEYS = ("label", "labels", "target", "targets")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"   # a local file header, or the end record of an empty archive
CHUNK = 4096
#: float32 data beyond this overflows inside any model that multiplies or adds it
MAX_ABS_VALUE = 1e30


@dataclass
class Samples:
    """One array per model input, (N, *shape), plus the labels the source carried."""
    arrays: list[np.ndarray]
    labels: np.ndarray | None
    source: str
    names: list[str] | None = None    # the names the arrays were stored under (.npz, dict)
    total: int | None = None          # samples in the source before a limit (None: not read to the end)

    @property
    def count(self) -> int:
        return int(self.arrays[0].shape[0]) if self.arrays and self.arrays[0].ndim else 0


@dataclass
class Inputs:
    """What is known of the model's inputs when the data is read (None: not yet)."""
    names: list[str] | None = None
    count: int | None = None
    ranks: list[int] | None = None     # with the batch dimension


def read_samples(data: Any, what: str, inputs: Inputs, spill_dir: Path, limit: int | None = None) -> Samples:
    """Any accepted form -> ``Samples`` (at most ``limit`` samples)."""
    if isinstance(data, (str, Path)):
        spec = str(data)
        if isinstance(data, str) and user_code.is_callable_spec(spec) and not Path(spec).is_file():
            fn = user_code.load_callable(spec, f"{what} data")
            return _relabel(read_samples(user_code.call(fn, spec, f"{what} data"), what, inputs, spill_dir, limit),
                            spec)
        return _limited(_read_file(Path(data), what, inputs), limit)
    whole = _whole_arrays(data, inputs)
    if whole is not None:
        return _limited(whole, limit)
    if isinstance(data, (bytes, bytearray)) or not hasattr(data, "__iter__") and not _is_map_dataset(data):
        raise EdgeqError(f"{what} data of type {type(data).__name__} is not accepted; give an array, a tensor, a "
                         "DataLoader, a Dataset or an iterable of batches (or a .npy/.npz file)")
    return stream_samples(data, what, inputs, spill_dir, limit)


def _relabel(s: Samples, source: str) -> Samples:
    s.source = source
    return s


def _limited(s: Samples, limit: int | None) -> Samples:
    s.total = s.count
    if limit is not None and s.count > limit:
        s.arrays = [a[:limit] for a in s.arrays]
        s.labels = None if s.labels is None else s.labels[:limit]
    return s


# -- files --------------------------------------------------------------------------------

def _read_file(path: Path, what: str, inputs: Inputs) -> Samples:
    if path.is_dir():
        raise EdgeqError(f"{what} data {path} is a directory; give a .npy or .npz file (or file.py:callable "
                         "returning your samples)")
    if not path.is_file():
        raise EdgeqError(f"{what} data file not found: {path} (relative paths start at {Path.cwd()}); check the path")
    with open(path, "rb") as f:
        head = f.read(8)
    kind = "npy" if head.startswith(NPY_MAGIC) else "npz" if head.startswith(ZIP_MAGIC) else None
    if kind is None:
        looks = "is empty" if not head else "looks like text (CSV?)" if _is_text(head) else "is not numpy data"
        raise EdgeqError(f"{what} data {path} {looks}: edgeq reads .npy (numpy.save) and .npz (numpy.savez) "
                         "files; convert it with numpy, or give file.py:callable returning the samples")
    if path.suffix in (".npy", ".npz") and path.suffix != f".{kind}":
        raise EdgeqError(f"{what} data {path} is an .{kind} file named {path.suffix}; rename it to "
                         f"{path.with_suffix('.' + kind).name}")
    try:
        return _read_npy(path) if kind == "npy" else _read_npz(path, what, inputs)
    except EdgeqError:
        raise
    except (ValueError, OSError, EOFError) as e:
        why = "it holds pickled Python objects, which edgeq does not load" if "pickle" in str(e) \
            or "Python objects" in str(e) else str(e)
        raise EdgeqError(f"cannot read {what} data {path}: {why}; save plain numeric arrays with numpy.save / "
                         "numpy.savez") from None


def _is_text(head: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _read_npy(path: Path) -> Samples:
    return Samples([np.load(path, mmap_mode="r", allow_pickle=False)], None, str(path))


def _read_npz(path: Path, what: str, inputs: Inputs) -> Samples:
    with np.load(path, allow_pickle=False) as z:
        keys = list(z.keys())
        if not keys:
            raise EdgeqError(f"{what} data {path} holds no arrays; store one array per model input "
                             "(numpy.savez(path, input_name=array))")
        label_key = next((k for k in keys if k in LABEL_KEYS), None)
        data_keys = [k for k in keys if k != label_key]
        labels = z[label_key] if label_key else None
        names = inputs.names
        if names is not None and set(names) <= set(data_keys):
            chosen = names
        elif inputs.count is None or len(data_keys) == inputs.count:
            chosen = data_keys
        else:
            raise EdgeqError(f"{what} data {path} holds arrays {data_keys}, but the model's inputs are "
                             f"{names or inputs.count}: store one array per input, named after it")
        return Samples([z[k] for k in chosen], labels, str(path), chosen)


# -- whole arrays in memory ----------------------------------------------------------------

def _numpy(x: Any) -> np.ndarray | None:
    """A tensor or array as numpy (no copy for CPU tensors); None for anything else."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return None


def _whole_arrays(data: Any, inputs: Inputs) -> Samples | None:
    """Forms that already hold the whole set: an array, a dict of arrays, a list of arrays
    (one per input) for a model with several inputs."""
    single = _numpy(data)
    if single is not None:
        return Samples([single], None, "(array)")
    if isinstance(data, dict):
        arrays = {k: _numpy(v) for k, v in data.items()}
        if arrays and all(v is not None for v in arrays.values()):
            label_key = next((k for k in arrays if k in LABEL_KEYS), None)
            names = [k for k in arrays if k != label_key]
            if inputs.names is not None and set(inputs.names) <= set(names):
                names = list(inputs.names)
            return Samples([arrays[k] for k in names], arrays[label_key] if label_key else None, "(dict)", names)
    if isinstance(data, (list, tuple)) and (inputs.count or 1) > 1 and len(data) == inputs.count:
        arrays = [_numpy(v) for v in data]
        if all(a is not None for a in arrays):
            return Samples(arrays, None, "(arrays)")  # type: ignore[arg-type]
    return None


# -- streamed sources ------------------------------------------------------------------------

def _is_map_dataset(data: Any) -> bool:
    return hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple, dict,
                                                                                               str, bytes))


def stream_samples(data: Any, what: str, inputs: Inputs, spill_dir: Path, limit: int | None = None) -> Samples:
    """Read a DataLoader, Dataset or iterable once, spilling each input to a memory-mapped file."""
    if _is_map_dataset(data) and not hasattr(data, "batch_size"):
        items: Iterable[Any] = (data[i] for i in range(len(data)))
        batched: bool | None = False
    else:
        items = data
        batched = _loader_batches(data)
    spill = Spill(spill_dir, what)
    try:
        for index, item in enumerate(_take(iter(items), limit, batched, inputs)):
            xs, label = split_batch(item[0], inputs, what, index)
            spill.add(xs, label, item[1])
    except EdgeqError:
        raise
    except Exception as e:   # the user's iterator or collate raised: one line naming it
        raise EdgeqError(f"reading the {what} data raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         "; check the data source") from e
    return spill.finish(limit)


def _loader_batches(data: Any) -> bool | None:
    """True for a batching DataLoader, False for one that yields samples, None: decide by rank."""
    if hasattr(data, "batch_size") and hasattr(data, "dataset"):
        return data.batch_size is not None or getattr(data, "batch_sampler", None) is not None
    return None


def _take(items: Iterator[Any], limit: int | None, batched: bool | None, inputs: Inputs) -> Iterator[tuple[Any, bool]]:
    """(item, is_batch) pairs until ``limit`` samples are read."""
    seen = 0
    for item in items:
        is_batch = batched if batched is not None else _looks_batched(item, inputs)
        yield item, is_batch
        seen += _batch_len(item) if is_batch else 1
        if limit is not None and seen >= limit:
            return


def _first_array(item: Any) -> np.ndarray | None:
    if isinstance(item, dict):
        item = next((v for k, v in item.items() if k not in LABEL_KEYS), None)
    elif isinstance(item, (list, tuple)) and item:
        item = item[0]
    a = _numpy(item)
    return a if a is not None else (np.asarray(item) if isinstance(item, (int, float, list)) else None)


def _looks_batched(item: Any, inputs: Inputs) -> bool:
    a = _first_array(item)
    if a is None or not inputs.ranks:
        return True
    return a.ndim == inputs.ranks[0]


def _batch_len(item: Any) -> int:
    a = _first_array(item)
    return int(a.shape[0]) if a is not None and a.ndim else 1


def split_batch(item: Any, inputs: Inputs, what: str, index: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """A batch (or sample) -> one array per input, and its labels if it carries them."""
    count = inputs.count
    if isinstance(item, dict):
        label_key = next((k for k in item if k in LABEL_KEYS), None)
        keys = [k for k in item if k != label_key]
        if inputs.names is not None and set(inputs.names) <= set(keys):
            keys = list(inputs.names)
        elif count is not None and len(keys) != count:
            raise EdgeqError(f"{what} batch {index} has keys {list(item)}, but the model takes {count} input(s) "
                             f"{inputs.names or ''}; name the batch's entries after the inputs")
        parts, label = [item[k] for k in keys], item[label_key] if label_key else None
    elif isinstance(item, (list, tuple)):
        parts, label = list(item), None
        n = count if count is not None else (len(parts) - 1 if len(parts) > 1 else 1)
        if len(parts) == n + 1:
            parts, label = parts[:n], parts[n]
        elif len(parts) != n:
            raise EdgeqError(f"{what} batch {index} has {len(parts)} elements, but the model takes {n} input(s); "
                             "yield (inputs..., label) tuples or just the inputs")
    else:
        parts, label = [item], None
    arrays = [_as_array(p, what, index) for p in parts]
    return arrays, None if label is None else _as_array(label, what, index)


def _as_array(x: Any, what: str, index: int) -> np.ndarray:
    a = _numpy(x)
    if a is None:
        try:
            a = np.asarray(x)
        except Exception:
            a = np.asarray(None)
    if a.dtype.kind not in "biuf":
        raise EdgeqError(f"{what} batch {index} holds {type(x).__name__} values of dtype {a.dtype}; "
                         "yield numeric arrays or tensors")
    return a


class Spill:
    """Per input, batches appended to a raw file in ``folder``; ``finish`` memory-maps them."""

    def __init__(self, folder: Path, what: str) -> None:
        self.folder, self.what = Path(folder), what
        self.files: list[Any] = []
        self.shapes: list[tuple[int, ...]] = []
        self.dtypes: list[np.dtype] = []
        self.labels: list[np.ndarray] = []
        self.unlabelled = False
        self.count = 0

    def add(self, arrays: list[np.ndarray], label: np.ndarray | None, is_batch: bool) -> None:
        if not is_batch:
            arrays = [a[None] for a in arrays]
            label = None if label is None else np.asarray(label).reshape(1)
        if not self.files:
            self._open(arrays)
        if len(arrays) != len(self.files):
            raise EdgeqError(f"{self.what} batch {self.count} has {len(arrays)} inputs, earlier ones {len(self.files)}")
        n = arrays[0].shape[0] if arrays[0].ndim else 0
        for i, a in enumerate(arrays):
            if a.ndim == 0 or tuple(a.shape[1:]) != self.shapes[i] or a.shape[0] != n:
                raise EdgeqError(f"{self.what} data: a batch after sample {self.count} has shape {tuple(a.shape)} "
                                 f"for input {i}, earlier batches (N, {', '.join(map(str, self.shapes[i]))}); "
                                 "every sample must have the same shape")
            self.files[i].write(np.ascontiguousarray(a, dtype=self.dtypes[i]).tobytes())
        self._add_labels(label, n)
        self.count += n

    def _open(self, arrays: list[np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arrays):
            self.files.append(open(self.folder / f"{self.what}_{i}.bin", "wb"))
            self.shapes.append(tuple(a.shape[1:]))
            self.dtypes.append(np.dtype(np.float32) if a.dtype.kind == "f" else np.dtype(np.int64))

    def _add_labels(self, label: np.ndarray | None, n: int) -> None:
        if label is None:
            self.unlabelled = True
            return
        flat = np.asarray(label).reshape(-1)
        if flat.shape[0] != n:
            raise EdgeqError(f"{self.what} data: a batch has {n} samples but {flat.shape[0]} labels")
        self.labels.append(flat)

    def finish(self, limit: int | None) -> Samples:
        for f in self.files:
            f.close()
        if self.count == 0:
            raise EdgeqError(f"{self.what} data is empty (the source yielded no samples); give at least one sample")
        n = self.count if limit is None else min(limit, self.count)
        arrays = [np.memmap(f.name, dtype=d, mode="r", shape=(self.count, *s))[:n]
                  for f, d, s in zip(self.files, self.dtypes, self.shapes)]
        labels = None if self.unlabelled or not self.labels else np.concatenate(self.labels)[:n]
        return Samples(arrays, labels, f"({self.what} iterable)", total=self.count if limit is None else None)


# -- checks ----------------------------------------------------------------------------------

def check_inputs(samples: Samples, shapes: list[tuple[int, ...]], names: list[str], dtypes: list[str],
                 what: str = "calibration") -> None:
    """Refuse a wrong number of inputs, empty sets, wrong shapes or dtypes and NaN/Inf/huge
    values, naming the problem, both shapes and the way out."""
    src, arrays = samples.source, samples.arrays
    if len(arrays) != len(names):
        stored = f" (stored as {', '.join(samples.names)})" if samples.names else ""
        raise EdgeqError(f"the model has {len(names)} input(s) ({', '.join(names)}) but the {what} data {src} "
                         f"holds {len(arrays)} array(s){stored}; give one array per input (an .npz named after "
                         "the inputs)")
    for a, shape, name, dtype in zip(arrays, shapes, names, dtypes):
        _check_array(a, tuple(shape), name, dtype, src, what)
    counts = sorted({int(a.shape[0]) for a in arrays})
    if len(counts) != 1:
        raise EdgeqError(f"{what} data {src}: the inputs have different sample counts {counts}; every input "
                         "needs one row per sample")


def _check_array(a: np.ndarray, shape: tuple[int, ...], name: str, dtype: str, src: str, what: str) -> None:
    if a.ndim == 0 or a.shape[0] == 0:
        raise EdgeqError(f"{what} data {src} is empty (shape {a.shape}); give at least one sample of shape {shape}")
    integer_input = dtype.startswith(("int", "uint"))
    if a.dtype.kind not in ("iu" if integer_input else "f"):
        expected = f"integers ({dtype}, e.g. token ids)" if integer_input else "float32"
        raise EdgeqError(f"{what} data {src} for input '{name}' has dtype {a.dtype}; the model's input takes "
                         f"{expected}, shaped (N, *input_shape)")
    if tuple(a.shape[1:]) != shape:
        raise EdgeqError(f"{what} data {src} for input '{name}' has samples of shape {tuple(a.shape[1:])} but the "
                         f"model expects {shape} (data shape (N, *input_shape), N={a.shape[0]}; image models use "
                         "torch's NCHW order)")
    for start in range(0, a.shape[0], CHUNK):
        chunk = np.asarray(a[start:start + CHUNK])
        if integer_input:
            continue
        bad = ~np.isfinite(chunk) | (np.abs(chunk) > MAX_ABS_VALUE)
        if bad.any():
            first = start + int(np.argwhere(bad.reshape(chunk.shape[0], -1).any(axis=1))[0][0])
            kind = "NaN or Inf" if not np.isfinite(chunk).all() else f"values beyond +-{MAX_ABS_VALUE:g}"
            raise EdgeqError(f"{what} data {src} contains {kind} (first in sample {first}); clean or rescale the "
                             "data before calibrating")


def load_labels(path: str | Path) -> np.ndarray:
    """Labels from a .npy file (checked against the eval set by ``check_labels``)."""
    path = Path(path)
    if path.is_dir() or not path.is_file():
        raise EdgeqError(f"labels file not found: {path} (relative paths start at {Path.cwd()}); give an int64 .npy")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise EdgeqError(f"cannot read labels {path}: {e}; save them with numpy.save as int64 (N,)") from None


def check_labels(labels: Any, n: int, classes: int | None, source: str, at_least: bool = False) -> np.ndarray:
    """int64 (n,) class indices in [0, classes) (``at_least``: n or more); ``classes`` None when
    the model's output does not tell (e.g. an argmax head)."""
    labels = _numpy(labels) if _numpy(labels) is not None else np.asarray(labels)
    count_ok = labels.ndim == 1 and (labels.shape[0] >= n if at_least else labels.shape[0] == n)
    if not count_ok or labels.dtype.kind not in "iu":
        raise EdgeqError(f"labels {source} have shape {labels.shape} and dtype {labels.dtype}; expected integer class "
                         f"indices of shape ({n},) to match the eval data")
    labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise EdgeqError(f"labels {source} include {int(labels.min())}; class indices start at 0")
    if classes is not None and labels.size and labels.max() >= classes:
        raise EdgeqError(f"labels {source} include class {int(labels.max())}, but the model outputs {classes} "
                         f"classes (0..{classes - 1}); check that the labels belong to this model")
    return labels


def batches(samples: Samples, size: int) -> Iterator[list[np.ndarray]]:
    """The set in consecutive batches (copies, so memory-mapped files stay read-only)."""
    for start in itertools.count(0, size):
        if start >= samples.count:
            return
        yield [np.array(a[start:start + size]) for a in samples.arrays]
