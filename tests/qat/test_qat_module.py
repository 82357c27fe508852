"""The QAT module against the integer reference interpreter, bit for bit, on every single-op case
QAT supports, before and after optimizer steps; gradients reach every weight; unsupported ops
are refused naming the op."""
import numpy as np
import pytest
import torch

import edgeq
from edgeq.errors import UnsupportedOpError
from edgeq.qat.kernel import KERNELS
from tests.helpers import data
from tests.op_cases import CASES
from tests.qat.conftest import assert_exact, reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _prepare(name, target="onnx"):
    model, shape = CASES[name]
    x = data(shape, 48)
    try:
        return edgeq.qat.prepare(model, x, target), x
    except UnsupportedOpError as e:   # refused: the message names an op QAT has no kernel for
        missing = [op for op in str(e).split("'")[1::2] if op not in KERNELS]
        assert "QAT" in str(e) and missing, str(e)
        pytest.skip(f"not supported by QAT: {e}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_bit_exact_before_and_after_training(name):
    qm, x = _prepare(name)
    assert_exact(qm, x)
    if not list(qm.parameters()):
        return
    before = qm.quantized_graph()
    opt = torch.optim.Adam(qm.parameters(), lr=0.05)
    target = [torch.from_numpy(r).float() for r in reference(qm, data(CASES[name][1], 48, seed=1))[1]]
    for _ in range(3):
        opt.zero_grad()
        ys = qm(torch.from_numpy(x))
        ys = ys if isinstance(ys, tuple) else (ys,)
        floats = [(y, t) for y, t in zip(ys, target) if y.is_floating_point()]
        if not floats:            # an index output (argmax): no gradient; move the weights by hand
            with torch.no_grad():
                for p in qm.parameters():
                    p.add_(torch.randn_like(p) * p.abs().mean() * 0.2)
            continue
        sum(((y - t.flip(0)) ** 2).mean() for y, t in floats).backward()
        for p in qm.parameters():
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, "a weight got no gradient"
        opt.step()
    after = qm.quantized_graph()
    assert any(not np.array_equal(before.t(n).data, after.t(n).data)
               for node in after.nodes if node.name in qm._slot for n in node.inputs[1:] if n in before.tensors) \
        or any(not np.array_equal(before.nodes[i].attrs.get("multiplier"), node.attrs.get("multiplier"))
               for i, node in enumerate(after.nodes) if node.name in qm._slot), "training changed no integer"
    assert_exact(qm, x)
    assert_exact(qm, data(CASES[name][1], 48, seed=2))


def test_int16_layers_bit_exact_after_training():
    model, shape = CASES["conv_pools_16x8"]
    x = data(shape, 48)
    qm = edgeq.qat.prepare(model, x, "tflite", precision="16x8")
    assert any(qm.graph.t(n.outputs[0]).dtype == "int16" for n in qm.graph.nodes)
    opt = torch.optim.SGD(qm.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        qm(torch.from_numpy(x)).pow(2).mean().backward()
        opt.step()
    assert_exact(qm, x)


class _Gru(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(4, 6, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0][:, -1]


def test_unsupported_op_names_the_op():
    assert "scan" not in KERNELS            # a recurrent layer's loop has no QAT kernel yet
    with pytest.raises(UnsupportedOpError, match="op 'scan' .* has no QAT kernel; edgeq.qat trains through: "):
        edgeq.qat.prepare(_Gru().eval(), data((5, 4), 16), "onnx")


def test_forward_float_is_the_float_model_before_training():
    model, shape = CASES["conv1d_bn_relu_pool_stack"]
    x = data(shape, 32)
    qm = edgeq.qat.prepare(model, x, "onnx")
    with torch.no_grad():
        np.testing.assert_allclose(qm.forward_float(torch.from_numpy(x)).numpy(), model.eval()(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)
