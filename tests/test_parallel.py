"""Independent work side by side: results in order, errors raised, artifacts as in sequence."""
import numpy as np
import pytest
import torch
import torch.nn as nn

import edgeq
from edgeq import parallel


def test_results_come_in_task_order_and_the_first_error_is_raised(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    assert parallel.in_parallel([lambda i=i: i * i for i in range(5)]) == [0, 1, 4, 9, 16]

    def fails(msg: str):
        def task():
            raise ValueError(msg)
        return task
    with pytest.raises(ValueError, match="first"):
        parallel.in_parallel([lambda: 1, fails("first"), fails("second")])
    import threading
    caller = threading.get_ident()
    assert parallel.in_parallel([threading.get_ident, threading.get_ident])[0] == caller


def _separable() -> nn.Module:
    torch.manual_seed(0)     # depthwise -> pointwise: the build also tries an equalized graph
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.ReLU(),
                         nn.Conv2d(8, 4, 1), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()


def test_a_build_on_one_core_writes_the_same_bytes(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(48, 3, 12, 12)).astype(np.float32)
    artifacts = {}
    for cores in (2, 1):
        monkeypatch.setattr(parallel, "cores", lambda cores=cores: cores)
        rep = edgeq.build(_separable(), x, "tflite", tmp_path / str(cores))
        assert rep["quantization_passes"]["sqnr_db_equalized"] is not None
        artifacts[cores] = {a["path"]: (tmp_path / str(cores) / a["path"]).read_bytes()
                            for a in rep["artifacts"] if a["path"].endswith(".tflite")}
    assert artifacts[1] and artifacts[1] == artifacts[2]
