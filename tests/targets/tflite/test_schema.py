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


def _quantization_tables(buf: bytes) -> dict[tuple, set[int]]:
    """Content (scales, zero points, quantized dimension) -> positions of the tables holding it."""
    m = fb.Model.GetRootAs(buf, 0)
    tables: dict[tuple, set[int]] = {}
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            q = sg.Tensors(i).Quantization()
            if q is not None:
                key = (q.ScaleAsNumpy().tobytes(), q.ZeroPointAsNumpy().tobytes(), q.QuantizedDimension())
                tables.setdefault(key, set()).add(q._tab.Pos)
    return tables


def test_equal_quantization_and_constants_are_written_once_and_read_back_as_the_ir_says(tmp_path, one_torch_thread):
    """Tensors of equal quantization share one QuantizationParameters table and equal constants
    one buffer; LiteRT, reading the file itself, still gives every IR tensor the IR's scales,
    zero points, axis and constant values, and every runtime stays bit-exact."""
    from edgeq import interpreter
    from edgeq.pipeline import float_graph, quantized_graph
    from edgeq.targets import load_profile, target_module
    from edgeq.targets.tflite.runtimes import litert_interpreter
    from tests.helpers import SharedParamsNet, data

    profile = load_profile("tflite")
    t = target_module(profile)
    x = data((3, 4, 4), n=16)
    options = {**profile.quantizer, "description": "shared", "edgeq_version": "test", "bias_correction": False}
    qgraph = quantized_graph(float_graph(SharedParamsNet().eval(), [(3, 4, 4)]), [x], method="minmax", options=options)
    graph = t.prepare(qgraph, profile, options)
    [path] = t.emit(graph, tmp_path, profile, options)
    buf = path.read_bytes()

    tables = _quantization_tables(buf)
    assert all(len(positions) == 1 for positions in tables.values())        # one table per content
    model = read_model(buf)
    quantized = [tt for sg in model.subgraphs for tt in sg.tensors if tt.quantization is not None]
    assert len(tables) < len(quantized)                                      # and some are shared
    payloads = [b.data.tobytes() for b in model.buffers if b.data is not None and len(b.data)]
    assert len(set(payloads)) == len(payloads)                               # one buffer per content
    readers = [int(tt.buffer) for sg in model.subgraphs for tt in sg.tensors if tt.buffer]
    assert max(readers.count(b) for b in set(readers)) >= 2                  # the two zero biases

    interp = litert_interpreter(buf, reference=True)
    checked = 0
    for d in interp.get_tensor_details():
        if d["name"] not in graph.tensors or graph.t(d["name"]).quant is None:
            continue
        ir = graph.t(d["name"])
        qp = d["quantization_parameters"]
        np.testing.assert_array_equal(qp["scales"], ir.quant.scale.astype(np.float32), err_msg=d["name"])
        np.testing.assert_array_equal(qp["zero_points"], ir.quant.zero_point, err_msg=d["name"])
        assert qp["quantized_dimension"] == (ir.quant.axis or 0), d["name"]
        if ir.is_constant:
            np.testing.assert_array_equal(interp.get_tensor(d["index"]).reshape(-1), ir.data.reshape(-1))
        checked += 1
    assert checked >= 10

    q = interpreter.quantize_input(graph, 0, x, t.input_rounding).transpose(0, 2, 3, 1)
    ref = interpreter.run(graph, [np.ascontiguousarray(q)])[graph.outputs[0]]
    for run in t.run(graph, [path], profile, [np.ascontiguousarray(q)], [x], options):
        if run.must_be_exact:
            np.testing.assert_array_equal(run.outputs[0], ref, err_msg=run.runtime)
