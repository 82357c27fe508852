"""Op definitions, one per file; importing this package fills the registry."""
from . import activations, add, clamp, conv2d, data_movement, elementwise, float_only, linear, pool, shape_ops, softmax  # noqa: F401
from .base import REGISTRY, OpDef, get_op

__all__ = ["REGISTRY", "OpDef", "get_op"]
