from .loader import load_model
from .torch_export import trace

__all__ = ["load_model", "trace"]
