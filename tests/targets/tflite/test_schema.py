"""How edgeq writes TFLite flatbuffers: equal vectors (per-channel zero points, shapes) are
written once and shared, and a recurrent layer's stacked-state accumulator is made by FILL at run
time rather than stored as a buffer of zeros. The runtimes must still read the result exactly."""
from __future__ import annotations

import flatbuffers
import numpy as np
import torch
from torch import nn

import edgeq
from edgeq.targets.tflite.schema import OP_NAMES, SharingBuilder, builtin_code, fb, read_model


def _zero_point_views(buf: bytes) -> list[np.ndarray]:
    m = fb.Model.GetRootAs(buf, 0)
    views = []
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            q = sg.Tensors(i).Quantization()
            if q is not None and q.ZeroPointLength() > 1:
                views.append(q.ZeroPointAsNumpy())
    return views


def test_equal_vectors_are_written_once_and_read_back_equal() -> None:
    b = SharingBuilder(1024)
    zeros = np.zeros(64, np.int64)
    first, second = b.CreateNumpyVector(zeros), b.CreateNumpyVector(zeros.copy())
    other = b.CreateNumpyVector(np.arange(64, dtype=np.int64))
    same_bytes_other_type = b.CreateNumpyVector(np.zeros(128, np.int32))
    assert first == second
    assert len({first, other, same_bytes_other_type}) == 3
    plain = flatbuffers.Builder(1024)
    for v in (zeros, zeros.copy(), np.arange(64, dtype=np.int64), np.zeros(128, np.int32)):
        plain.CreateNumpyVector(v)
    assert plain.Offset() - b.Offset() >= 64 * 8          # the repeated vector's bytes, saved once


class _TwoLayerGru(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(6, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x)[0][:, -1])


def test_recurrent_model_shares_zero_points_fills_its_accumulators_and_stays_exact(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cal = rng.normal(size=(24, 12, 6)).astype(np.float32)
    ev = rng.normal(size=(6, 12, 6)).astype(np.float32)
    report = edgeq.build(_TwoLayerGru().eval(), cal, "tflite", tmp_path / "out", eval_data=ev)
    exact = {v["runtime"].split(" (")[0].split(" ")[0] + (" REF" if "BUILTIN_REF" in v["runtime"] else ""):
             v["exact_fraction"] for v in report["validation"]}
    assert exact["tflite-micro"] == 1.0 and exact["LiteRT REF"] == 1.0, report["validation"]

    [path] = [a["path"] for a in report["artifacts"] if a["path"].endswith(".tflite")]
    buf = (tmp_path / "out" / path).read_bytes()
    views = _zero_point_views(buf)
    assert len(views) >= 12                       # per-channel weights and biases of 2 layers x 3 gates
    by_content: dict[bytes, set[int]] = {}
    for v in views:
        by_content.setdefault(v.tobytes(), set()).add(v.ctypes.data)
    assert all(len(addresses) == 1 for addresses in by_content.values())   # one copy per content

    model = read_model(buf)
    main_ops = [OP_NAMES[builtin_code(model.operatorCodes[o.opcodeIndex])] for o in model.subgraphs[0].operators]
    assert main_ops.count("FILL") == 2             # the first layer's stacked output, and the second's
    sequence_bytes = 12 * 16                       # a [1, 12, 16] int8 accumulator
    assert not any(b.data is not None and len(b.data) == sequence_bytes and not np.any(b.data)
                   for b in model.buffers)
