"""Build options: one dataclass that the command line and the Python API both fill."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .calibration import METHODS
from .errors import EdgeqError
from .mixed_precision import MODES


@dataclass
class BuildOptions:
    """Everything ``edgeq build`` can be told besides the model, the data, the target and the
    output directory. Field names are the keyword arguments of ``edgeq.build``."""
    #: calibration range method (``calibration.METHODS``) and its percentile
    method: str = "mse"
    percentile: float = 99.99
    #: input shape without the batch dimension, for factory models traced without data
    input_shape: tuple[int, ...] | None = None
    #: TFLite boundary type ("int8" or "float") and the 4-D input layout of NHWC targets
    io: str = "int8"
    input_layout: str = "nhwc"
    #: C symbol prefix (C targets)
    name: str = "model"
    #: validate on at most this many eval samples (None: all)
    max_eval_samples: int | None = None
    progress: bool = False
    equalization: bool = True
    bias_correction: bool = True
    #: tensor whose histogram is plotted (None: the most sensitive layer's output)
    histogram_tensor: str | None = None
    #: "int8", "16x8" or "auto" (``mixed_precision``), explicit promotions, and auto's targets
    precision: str = "int8"
    int16_layers: list[str] = field(default_factory=list)
    target_sqnr: float | None = None
    max_accuracy_drop: float | None = None
    #: raise ValidationError (after writing the report) when a must-be-exact runtime differs
    raise_on_mismatch: bool = True

    @classmethod
    def from_kwargs(cls, options: "BuildOptions | None" = None, **kwargs: object) -> "BuildOptions":
        """``options`` (or the defaults) with ``kwargs`` replacing fields; unknown names refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown build option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        base = asdict(options) if options is not None else {}
        merged = {**base, **kwargs}
        merged["int16_layers"] = list(merged.get("int16_layers") or [])
        return cls(**merged)

    def check(self) -> None:
        """Refuse values no build can use, before any work is done."""
        if self.method not in METHODS:
            raise EdgeqError(f"unknown calibration method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.precision not in MODES:
            raise EdgeqError(f"unknown precision '{self.precision}'; choose one of {', '.join(MODES)}")
        if self.io not in ("int8", "float"):
            raise EdgeqError(f"--io must be int8 or float, not '{self.io}'")
        if self.input_layout not in ("nhwc", "nchw"):
            raise EdgeqError(f"--input-layout must be nhwc or nchw, not '{self.input_layout}'")
