"""Per-op lowerings of the C target, one module per op family; importing this package fills
the table (``LOWERINGS``)."""
from __future__ import annotations

from . import conv, elementwise, movement, reduce  # noqa: F401  (each registers its ops)
from .registry import LOWERINGS, Kernel, Lowering, int16_ops, kernel, kernel_files, lowers, supported_ops

__all__ = ["LOWERINGS", "Kernel", "Lowering", "int16_ops", "kernel", "kernel_files", "lowers", "supported_ops"]
