"""Resolve the MODEL argument: a ``.pt2`` ExportedProgram or a ``file.py:factory`` /
``package.module:factory`` callable returning an nn.Module. Never unpickles."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

import torch

from ..errors import EdgeqError


def load_model(spec: str) -> torch.nn.Module | torch.export.ExportedProgram:
    path = Path(spec)
    if spec.endswith(".pt2"):
        if not path.is_file():
            raise EdgeqError(f"model file not found: {spec}")
        try:
            with warnings.catch_warnings():  # torch's own deprecation noise while unflattening specs
                warnings.simplefilter("ignore", FutureWarning)
                return torch.export.load(str(path))
        except Exception as e:  # a corrupt or foreign file: say so instead of a traceback
            raise EdgeqError(f"cannot load {spec} as a torch.export program ({type(e).__name__}: {e}); "
                             "save it with torch.export.save(torch.export.export(model, example_inputs), path)") from e
    if ":" not in spec:
        raise EdgeqError(f"cannot interpret model '{spec}': give a .pt2 file (torch.export.save) "
                         "or 'file.py:factory' / 'package.module:factory'")
    where, factory_name = spec.rsplit(":", 1)
    module = _import(where)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise EdgeqError(f"'{factory_name}' is not a callable in {where}")
    model = factory()
    if isinstance(model, torch.export.ExportedProgram):
        return model
    if not isinstance(model, torch.nn.Module):
        raise EdgeqError(f"{spec} returned {type(model).__name__}, expected a torch.nn.Module")
    return model.eval()


def _import(where: str):
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise EdgeqError(f"model file not found: {where}")
        name = f"edgeq_user_model_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
        return module
    try:
        return importlib.import_module(where)
    except ImportError as e:
        raise EdgeqError(f"cannot import module '{where}': {e}") from e
