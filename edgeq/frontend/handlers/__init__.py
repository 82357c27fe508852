"""Importing this package registers every aten handler with ``tracer.handles``."""
from . import elementwise, layers, normalization, pooling, shapes  # noqa: F401
