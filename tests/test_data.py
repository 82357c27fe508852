"""Calibration and eval data in every accepted form (edgeq.data), checked against the same
samples given as one numpy array."""
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import edgeq
from edgeq.data import Inputs, Samples, check_inputs, check_labels, read_samples
from edgeq.errors import EdgeqError

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "calibration" / "digits"
LENET = ROOT / "examples" / "digits" / "lenet.pt2"
ONE = Inputs(["x"], 1, [4])
X = np.random.default_rng(0).random((37, 1, 8, 8), dtype=np.float32)
Y = np.arange(37, dtype=np.int64) % 10


class Samples37(Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return torch.from_numpy(X[i]), int(Y[i])


class Stream(IterableDataset):
    def __iter__(self):
        for s in range(0, len(X), 10):
            yield {"x": torch.from_numpy(X[s:s + 10]), "label": torch.from_numpy(Y[s:s + 10])}


def _generator():
    for s in range(0, len(X), 8):
        yield X[s:s + 8], Y[s:s + 8]


SOURCES = {
    "array": (lambda: X, False),
    "tensor": (lambda: torch.from_numpy(X), False),
    "dataloader-batches": (lambda: DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(Y)), batch_size=16),
                           True),
    "dataloader-samples": (lambda: DataLoader(TensorDataset(torch.from_numpy(X)), batch_size=None), False),
    "map-dataset-with-labels": (lambda: Samples37(), True),
    "iterable-dataset-dict-batches": (lambda: Stream(), True),
    "generator-of-tuples": (_generator, True),
    "list-of-samples": (lambda: [X[i] for i in range(len(X))], False),
    "list-of-tensor-batches": (lambda: [torch.from_numpy(X[:20]), torch.from_numpy(X[20:])], False),
    "dict-of-arrays": (lambda: {"x": X, "labels": Y}, True),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_form_gives_the_same_samples(name, tmp_path):
    make, labelled = SOURCES[name]
    s = read_samples(make(), "calibration", ONE, tmp_path)
    assert len(s.arrays) == 1 and s.count == len(X)
    np.testing.assert_array_equal(np.asarray(s.arrays[0]), X)
    if labelled:
        np.testing.assert_array_equal(s.labels, Y)
    else:
        assert s.labels is None


def test_streamed_sources_are_read_once_into_memory_mapped_files(tmp_path):
    reads = []

    def once():
        for s in range(0, len(X), 8):
            reads.append(s)
            yield X[s:s + 8]

    s = read_samples(once(), "calibration", ONE, tmp_path)
    assert isinstance(s.arrays[0], np.memmap) and Path(s.arrays[0].filename).parent == tmp_path
    assert reads == list(range(0, len(X), 8))


def test_memory_does_not_grow_with_the_set(tmp_path):
    """40 MB streamed in 400 KB batches: the peak of Python/numpy allocations stays near one batch."""
    batch = np.ones((1600, 1, 8, 8), np.float32)   # 400 KB

    def stream():
        for _ in range(100):
            yield batch + 0

    tracemalloc.start()
    s = read_samples(stream(), "calibration", ONE, tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.count == 160_000 and peak < 4_000_000, peak


def test_limit_stops_reading(tmp_path):
    seen = []

    def stream():
        for i in range(1000):
            seen.append(i)
            yield X[:4]

    s = read_samples(stream(), "calibration", ONE, tmp_path, limit=10)
    assert s.count == 10 and len(seen) == 3


def test_tuple_batches_of_a_two_input_model_carry_inputs_then_label(tmp_path):
    a, b = np.zeros((6, 4), np.float32), np.ones((6, 4), np.float32)
    two = Inputs(["p", "q"], 2, [2, 2])
    s = read_samples([(a[:3], b[:3], Y[:3]), (a[3:], b[3:], Y[3:6])], "calibration", two, tmp_path)
    np.testing.assert_array_equal(np.asarray(s.arrays[1]), b)
    np.testing.assert_array_equal(s.labels, Y[:6])
    whole = read_samples([a, b], "calibration", two, tmp_path)     # one array per input (the old form)
    assert [x.shape for x in whole.arrays] == [(6, 4), (6, 4)] and whole.labels is None
    with pytest.raises(EdgeqError, match="has 4 elements, but the model takes 2"):
        read_samples([(a, b, Y[:6], Y[:6])], "calibration", two, tmp_path)


def test_integer_inputs_take_integer_data_and_float_inputs_float():
    ids = Samples([np.arange(12, dtype=np.int64).reshape(3, 4)], None, "(ids)")
    check_inputs(ids, [(4,)], ["tokens"], ["int64"])
    with pytest.raises(EdgeqError, match="takes integers"):
        check_inputs(Samples([np.zeros((3, 4), np.float32)], None, "(x)"), [(4,)], ["tokens"], ["int32"])
    with pytest.raises(EdgeqError, match="takes float32"):
        check_inputs(ids, [(4,)], ["x"], ["float32"])


def test_labels_are_checked_against_the_classes():
    np.testing.assert_array_equal(check_labels(np.array([0, 9], np.int32), 2, 10, "l"), [0, 9])
    for bad, needle in (([0, 10], "outputs 10 classes"), ([-1, 0], "start at 0"), ([0.5, 1.0], "integer")):
        with pytest.raises(EdgeqError, match=needle):
            check_labels(np.array(bad), 2, 10, "l")


def test_build_from_dataloaders_matches_the_npy_build(tmp_path):
    """Calibration from a DataLoader and labels from eval batches: the same artifact and accuracy
    as the .npy files (torch's default collate turns int labels into int64 tensors)."""
    cal, ev, labels = (np.load(DIGITS / f) for f in ("calib.npy", "eval.npy", "eval_labels.npy"))
    ref = edgeq.build(str(LENET), str(DIGITS / "calib.npy"), "onnx", tmp_path / "ref",
                      eval_data=str(DIGITS / "eval.npy"), eval_labels=str(DIGITS / "eval_labels.npy"))
    loader = DataLoader(TensorDataset(torch.from_numpy(cal)), batch_size=32)
    eval_loader = DataLoader(TensorDataset(torch.from_numpy(ev), torch.from_numpy(labels)), batch_size=64)
    rep = edgeq.build(str(LENET), loader, "onnx", tmp_path / "dl", eval_data=eval_loader)
    assert (tmp_path / "dl" / "model.onnx").read_bytes() == (tmp_path / "ref" / "model.onnx").read_bytes()
    assert rep["accuracy"] == ref["accuracy"] and rep["accuracy"]["float"] > 0.9
