from . import handlers  # noqa: F401 - fills the handler registry
from .loader import load_model
from .tracer import trace

__all__ = ["load_model", "trace"]
