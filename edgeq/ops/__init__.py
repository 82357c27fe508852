"""Op definitions, one per file; importing this package fills the registry."""
from . import (activations, add, clamp, conv2d, conv_transpose2d, data_movement, elementwise, float_only,  # noqa: F401
               linear, pool, reduce, requantize, shape_ops, softmax)
from .base import REGISTRY, OpDef, get_op

__all__ = ["REGISTRY", "OpDef", "get_op"]
