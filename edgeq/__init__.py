"""edgeq: PyTorch models to integer-only int8 ONNX, TFLite and microcontroller C, checked bit
for bit against an integer reference interpreter."""
from __future__ import annotations

from .build import Report, build  # noqa: E402
from .frontend import load_model, trace  # noqa: E402
from .interpreter import run as run_reference  # noqa: E402
from .options import BuildOptions  # noqa: E402
from .quantize import quantize  # noqa: E402
from .version import __version__  # noqa: E402
from . import qat  # noqa: E402

__all__ = ["__version__", "build", "BuildOptions", "Report", "trace", "quantize", "load_model", "run_reference", "qat"]
