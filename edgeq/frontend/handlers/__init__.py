"""Importing this package registers every aten handler with ``tracer.handles``."""
from . import elementwise, layers, normalization, pooling, recurrent, shapes  # noqa: F401
