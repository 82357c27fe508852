"""Op definitions, one per file (or family); importing this package fills the registry."""
from . import (activations, add, arithmetic, clamp, conv2d, conv_transpose2d, data_movement, elementwise,  # noqa: F401
               float_only, gather, linear, matmul, normalize, pool, reduce, requantize, scan, shape_ops,
               softmax)
from .base import REGISTRY, OpDef, get_op, with_bodies

__all__ = ["REGISTRY", "OpDef", "get_op", "with_bodies"]
