"""Per-op lowerings of the C target, one module per op family; importing this package fills
the table (``LOWERINGS``).

A new op's C lowering touches three places here: its kernel source ``kernels/edgeq_<op>.c``
(``kernels/s16/edgeq_<op>_s16.c`` for a 16x8 kernel), the parameter struct and prototype in its
family's API header ``kernels/edgeq_<family>.h`` (which includes ``edgeq_types.h``; the kernel
source includes that header and the support headers it uses), and in ``lower/<family>.py`` a
``kernel(function, *files)`` plus a function registered with ``@lowers(op, kernels=...,
int16=...)`` that fills the struct (``layer.call``).  The struct's members, the header to
include, the status return and the files to ship are read from the headers and the entry.
"""
from __future__ import annotations

# each module registers its ops
from . import arithmetic, control, conv, elementwise, gather, matmul, movement, reduce  # noqa: F401
from .registry import (LOWERINGS, Kernel, Lowering, allows_overlap, int16_ops, int32_input_ops, kernel, kernel_files,
                       kernel_scratch, lowers, supported_ops)

__all__ = ["LOWERINGS", "Kernel", "Lowering", "allows_overlap", "int16_ops", "int32_input_ops", "kernel",
           "kernel_files", "kernel_scratch", "lowers", "supported_ops"]
