"""Running the user's own code by design: ``file.py:name`` / ``package.module:name`` callables
(model factories, data sources). Every way such code can fail becomes one EdgeqError line
naming the spec, what went wrong (with the file and line in the user's code) and the way out."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from .errors import EdgeqError

_MODULE_NAME = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"


def is_callable_spec(spec: str) -> bool:
    """``where:name`` with a .py file or a dotted module before the colon."""
    import re
    if ":" not in spec:
        return False
    where, name = spec.rsplit(":", 1)
    return bool(name) and (where.endswith(".py") or re.fullmatch(_MODULE_NAME, where) is not None)


def load_callable(spec: str, what: str) -> Callable[[], Any]:
    """The callable named by ``spec``; ``what`` ("model factory", "calibration data") for messages."""
    where, name = spec.rsplit(":", 1)
    module = _import(where, what)
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise EdgeqError(f"{what} '{name}' is not defined in {where}"
                         f"{' (it defines: ' + ', '.join(defined[:12]) + ')' if defined else ''}; "
                         f"give {where}:NAME with a function defined there")
    fn = getattr(module, name)
    if not callable(fn):
        raise EdgeqError(f"{what} {spec} is a {type(fn).__name__}, not a callable; name a function (or class) "
                         "that edgeq can call with no arguments")
    _check_no_required_arguments(fn, spec, what)
    return fn


def call(fn: Callable[[], Any], spec: str, what: str) -> Any:
    """``fn()``; an exception in the user's code becomes one line with its innermost user frame."""
    try:
        return fn()
    except EdgeqError:
        raise
    except Exception as e:   # the user's code: say where it failed instead of a traceback
        raise EdgeqError(f"{what} {spec} raised {_describe(e)}; fix it and run again") from e


def _check_no_required_arguments(fn: Callable[..., Any], spec: str, what: str) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    required = [p.name for p in sig.parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if required:
        raise EdgeqError(f"{what} {spec} needs argument(s) {', '.join(required)}, but edgeq calls it with none; "
                         "give them defaults or wrap it in a function without parameters")


def _import(where: str, what: str) -> ModuleType:
    if where.endswith(".py"):
        path = Path(where)
        if path.is_dir() or not path.exists():
            raise EdgeqError(f"{what} file {where} not found (relative paths start at {Path.cwd()}); "
                             "check the path before the ':'")
        name = f"edgeq_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise EdgeqError(f"cannot load {where} as Python source; give a .py file")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.resolve().parent))
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            raise EdgeqError(f"{where} has a syntax error at line {e.lineno}: {e.msg}; fix the file") from None
        except Exception as e:
            raise EdgeqError(f"importing {where} (for the {what}) raised {_describe(e)}; fix the file or "
                             "install what it imports") from e
        finally:
            sys.path.pop(0)
        return module
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as e:
        if e.name and where.startswith(e.name):
            raise EdgeqError(f"no module named '{where}' (for the {what}); install it, run from the folder "
                             f"that holds it, or give a file path like path/to/{where.split('.')[-1]}.py:NAME") from e
        raise EdgeqError(f"importing {where} (for the {what}) raised {_describe(e)}") from e
    except SyntaxError as e:
        raise EdgeqError(f"{e.filename} has a syntax error at line {e.lineno}: {e.msg}; fix the file") from None
    except Exception as e:
        raise EdgeqError(f"importing {where} (for the {what}) raised {_describe(e)}") from e


def _describe(e: BaseException) -> str:
    """``ValueError: msg (file.py, line 3)``: the exception and the innermost frame outside edgeq."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    libraries = tuple({str(Path(__file__).parent), sys.prefix, sys.base_prefix, sys.exec_prefix})
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if not f.filename.startswith(libraries) and not f.filename.startswith("<")]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}{': ' + msg if msg else ''}{where}"
