"""Sanity checks for the example model zoo used by the end-to-end tests."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from examples.models import MODELS, synthetic_data  # noqa: E402

OUTPUT_SHAPES = {
    "lenet_digits": (10,),
    "mlp_digits": (10,),
    "ds_cnn": (12,),
    "resnet8": (10,),
    "mobilenet_v1_025": (2,),
    "fc_autoencoder": (640,),
    "mobilenet_v2_blocks": (10,),
}


def test_every_model_has_expected_output_shape() -> None:
    assert set(OUTPUT_SHAPES) == set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_factory_returns_eval_module(name: str) -> None:
    model = MODELS[name][0]()
    assert isinstance(model, torch.nn.Module)
    assert all(not m.training for m in model.modules())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_on_synthetic_data(name: str) -> None:
    model = MODELS[name][0]()
    x = synthetic_data(name, 4, seed=0)
    assert x.dtype == np.float32 and x.shape == (4, *MODELS[name][1])
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    assert y.shape == (4, *OUTPUT_SHAPES[name])
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_factory_is_deterministic(name: str) -> None:
    a, b = MODELS[name][0]().state_dict(), MODELS[name][0]().state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batchnorm_is_not_identity(name: str) -> None:
    """Random BN stats are what make the folding tests meaningful."""
    for m in MODELS[name][0]().modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert not torch.allclose(m.running_var, torch.ones_like(m.running_var))
            assert not torch.allclose(m.running_mean, torch.zeros_like(m.running_mean))


def test_synthetic_data_is_deterministic() -> None:
    for name in MODELS:
        assert np.array_equal(synthetic_data(name, 3, 7), synthetic_data(name, 3, 7))
    assert not np.array_equal(synthetic_data("resnet8", 3, 1),
                              synthetic_data("resnet8", 3, 2))


def test_mobilenet_v2_ends_with_softmax() -> None:
    model = MODELS["mobilenet_v2_blocks"][0]()
    with torch.no_grad():
        y = model(torch.from_numpy(synthetic_data("mobilenet_v2_blocks", 2, 0)))
    torch.testing.assert_close(y.sum(1), torch.ones(2))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exports_at_batch_one(name: str) -> None:
    """The toolchain consumes torch.export graphs, so every model must export."""
    model = MODELS[name][0]()
    x = torch.from_numpy(synthetic_data(name, 1, seed=0))
    ep = torch.export.export(model, (x,)).run_decompositions()
    torch.testing.assert_close(ep.module()(x), model(x))
