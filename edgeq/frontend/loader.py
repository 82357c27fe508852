"""Resolve the MODEL argument: a ``.pt2`` ExportedProgram or a ``file.py:factory`` /
``package.module:factory`` callable returning an nn.Module.

A ``.pt2`` is vetted by ``safe_archive`` before torch reads it: unless the user trusts the
file, nothing in it is unpickled beyond plain tensors, and torch reads the checked bytes, not
the file again. A factory is the user's own code and runs by design."""
from __future__ import annotations

import inspect
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from .. import user_code
from ..errors import EdgeqError
from . import safe_archive

Model = torch.nn.Module | torch.export.ExportedProgram


@dataclass
class InputSignature:
    """What is known of a model's inputs before tracing (None: unknown until data is seen)."""
    names: list[str] | None
    count: int | None
    shapes: list[tuple[int, ...]] | None = None     # with the batch dimension
    dtypes: list[str] | None = None


def load_model(spec: str, trust_model: bool = False) -> Model:
    """The model named by ``spec`` (a .pt2 path or a factory spec)."""
    if not isinstance(spec, str) or not spec.strip():
        raise EdgeqError("the model argument is empty; give a .pt2 file or file.py:factory")
    if spec.endswith(".pt2"):
        return _load_pt2(Path(spec), trust_model)
    if user_code.is_callable_spec(spec):
        return _from_factory(spec)
    path = Path(spec)
    if path.is_file():
        raise EdgeqError(f"{spec} is not a .pt2 file: edgeq reads torch.export programs "
                         "(torch.export.save(torch.export.export(model, example_inputs), 'model.pt2')); "
                         "for a checkpoint, give file.py:factory that builds the model and loads it")
    raise EdgeqError(f"cannot interpret model '{spec}': give a .pt2 file (torch.export.save) "
                     "or 'file.py:factory' / 'package.module:factory'")


def model_label(model: str | Model) -> str:
    """The name written into artifacts: the file's name, a factory's file and name, or the
    module's class name, never a path (artifacts must not depend on where the model lies)."""
    if isinstance(model, str):
        if user_code.is_callable_spec(model) and not model.endswith(".pt2"):
            where, name = model.rsplit(":", 1)
            return f"{Path(where).name if where.endswith('.py') else where}:{name}"
        return Path(model).name
    if isinstance(model, torch.export.ExportedProgram):
        return "ExportedProgram"
    return type(model).__name__


def _load_pt2(path: Path, trust_model: bool) -> torch.export.ExportedProgram:
    if path.is_dir():
        raise EdgeqError(f"model {path} is a directory; give the .pt2 file written by torch.export.save")
    if not path.is_file():
        raise EdgeqError(f"model file not found: {path} (relative paths start at {Path.cwd()}); check the path")
    source = safe_archive.checked_archive(path, trust_model)
    try:
        with _quiet_torch(trusted=trust_model):
            ep = torch.export.load(source)
    except EdgeqError:
        raise
    except Exception as e:   # a corrupt or foreign file: say so instead of a traceback
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise EdgeqError(f"cannot load {path} as a torch.export program ({type(e).__name__}: {first}); save it "
                         "with torch.export.save(torch.export.export(model, example_inputs), path)") from None
    check_static_shapes(ep, path.name)
    return ep


@contextmanager
def _quiet_torch(trusted: bool) -> Iterator[None]:
    """Only edgeq speaks: torch's loader logs tracebacks and warnings while it retries. Untrusted
    files are also loaded with torch's weights-only unpickler forced on (a second lock behind
    the archive check)."""
    previous_disable = logging.root.manager.disable
    previous_env = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    logging.disable(logging.CRITICAL)
    if not trusted:
        os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)
        if previous_env is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous_env


def check_static_shapes(ep: torch.export.ExportedProgram, label: str) -> None:
    """Refuse programs exported with dynamic dimensions, naming the input and the dimension."""
    for name, shape, _ in _user_inputs(ep):
        dynamic = [i for i, d in enumerate(shape) if not isinstance(d, int)]
        if dynamic:
            dims = ", ".join("batch (dim 0)" if i == 0 else f"dim {i}" for i in dynamic)
            raise EdgeqError(f"{label} was exported with dynamic dimensions (input '{name}': {dims}); edgeq "
                             "needs static shapes: export again without dynamic_shapes, with a batch-1 example")


def _user_inputs(ep: torch.export.ExportedProgram) -> list[tuple[str, tuple, str]]:
    """(name, shape, dtype) of each user input of ``ep``."""
    user = set(ep.graph_signature.user_inputs)
    out = []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user:
            val = node.meta.get("val")
            shape = tuple(val.shape) if hasattr(val, "shape") else ()
            shape = tuple(int(d) if isinstance(d, int) or (hasattr(d, "node") and d.node.is_constant()) else d
                          for d in shape)
            dtype = str(val.dtype).removeprefix("torch.") if hasattr(val, "dtype") else "float32"
            out.append((node.name, shape, dtype))
    return out


def input_signature(model: Model) -> InputSignature:
    """Input names, count, shapes and dtypes as far as they are known before tracing."""
    if isinstance(model, torch.export.ExportedProgram):
        inputs = _user_inputs(model)
        return InputSignature([n for n, _, _ in inputs], len(inputs), [s for _, s, _ in inputs],
                              [d for _, _, d in inputs])
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return InputSignature(None, None)
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return InputSignature(None, None)
    names = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY,
                                                                            p.POSITIONAL_OR_KEYWORD)]
    return InputSignature(names, len(names))


def _from_factory(spec: str) -> Model:
    factory = user_code.load_callable(spec, "model factory")
    model = user_code.call(factory, spec, "model factory")
    if isinstance(model, torch.export.ExportedProgram):
        check_static_shapes(model, spec)
        return model
    if not isinstance(model, torch.nn.Module):
        raise EdgeqError(f"model factory {spec} returned {type(model).__name__}, expected a torch.nn.Module "
                         "(or a torch.export.ExportedProgram)")
    return model.eval()
