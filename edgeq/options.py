"""Build options: one dataclass that the command line and the Python API both fill."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from .calibration import METHODS
from .errors import EdgeqError
from .mixed_precision import MODES
from .names import check_c_name
from .passes.adaround import DEFAULT_BUDGET_S
from .sensitivity import SENSITIVITY_MODES

ROUNDINGS = ("nearest", "adaround")


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
    #: C targets: the input lives in the model's arena (``NAME_input()`` returns the buffer the
    #: caller fills, ``NAME_run(output)`` runs the model; ``NAME_invoke`` still works, copying)
    input_in_arena: bool = False
    #: validate on at most this many eval samples (None: all)
    max_eval_samples: int | None = None
    #: calibrate on at most this many samples (None: all; a DataLoader is read only that far)
    max_calibration_samples: int | None = None
    progress: bool = False
    equalization: bool = True
    bias_correction: bool = True
    #: weight rounding: "nearest", or "adaround" (learned on the calibration data, ``passes.adaround``)
    #: within ``rounding_budget`` seconds
    rounding: str = "nearest"
    rounding_budget: float = DEFAULT_BUDGET_S
    #: the report's per-layer sensitivity simulations: "top" layers (cheap) or "all" of them
    sensitivity: str = "top"
    #: tensor whose histogram is plotted (None: the most sensitive layer's output)
    histogram_tensor: str | None = None
    #: "int8", "16x8" or "auto" (``mixed_precision``; the default: int8 unless the output SQNR
    #: falls below ``mixed_precision.DEFAULT_FLOOR_DB``), explicit promotions, and auto's targets
    precision: str = "auto"
    int16_layers: list[str] = field(default_factory=list)
    target_sqnr: float | None = None
    max_accuracy_drop: float | None = None
    #: raise ValidationError (after writing the report) when a must-be-exact runtime differs
    raise_on_mismatch: bool = True
    #: folders of user target profiles, added to the built-in ones (``targets.base``)
    targets_dir: list[str] = field(default_factory=list)
    #: load a .pt2 even when it holds pickles or code edgeq cannot vet (``frontend.safe_archive``)
    trust_model: bool = False
    #: replace an output directory that is not an earlier edgeq build
    force: bool = False

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
        dirs = merged.get("targets_dir") or []
        merged["targets_dir"] = [str(dirs)] if isinstance(dirs, (str, bytes)) or hasattr(dirs, "__fspath__") \
            else [str(d) for d in dirs]
        return cls(**merged)

    def given(self) -> set[str]:
        """Fields set to something other than their default."""
        default = BuildOptions()
        return {f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}

    def notes(self, target_format: str, given: set[str]) -> list[str]:
        """One line per option the user gave that this build ignores (``given``: field names)."""
        out = []
        if "percentile" in given and self.method not in ("percentile", "auto"):
            out.append(f"--percentile applies to --method percentile (and auto); ignored with --method {self.method}")
        if "io" in given and target_format != "tflite":
            out.append(f"--io applies to the tflite target; ignored for the {target_format} target")
        if "input_layout" in given and target_format == "onnx":
            out.append("--input-layout applies to the tflite and C targets; the onnx target keeps torch's NCHW")
        if "input_in_arena" in given and target_format != "c":
            out.append(f"--input-in-arena applies to the C targets; ignored for the {target_format} target")
        if "name" in given and target_format != "c":
            out.append(f"--name applies to the C targets; ignored for the {target_format} target")
        if "rounding_budget" in given and self.rounding != "adaround":
            out.append(f"--rounding-budget applies to --rounding adaround; ignored with --rounding {self.rounding}")
        if self.rounding == "adaround" and (("precision" in given and self.precision != "int8") or self.int16_layers):
            out.append("--rounding adaround applies to int8 builds; ignored with 16x8 layers (weights rounded to "
                       "nearest)")
        if self.int16_layers and "precision" in given and self.precision == "auto":
            out.append("--int16-layers promotes exactly the layers named; the --precision auto search does not run")
        for opt in ("target_sqnr", "max_accuracy_drop"):
            if opt in given and self.precision != "auto":
                out.append(f"--{opt.replace('_', '-')} applies to --precision auto; ignored with --precision "
                           f"{self.precision}")
        return out

    def check(self, target_format: str | None = None) -> None:
        """Refuse values no build can use, before any work is done (``--name`` is checked for the
        C format, where it names files and symbols)."""
        if self.method not in METHODS:
            raise EdgeqError(f"unknown calibration method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.precision not in MODES:
            raise EdgeqError(f"unknown precision '{self.precision}'; choose one of {', '.join(MODES)}")
        if self.rounding not in ROUNDINGS:
            raise EdgeqError(f"unknown rounding '{self.rounding}'; choose one of {', '.join(ROUNDINGS)}")
        if self.sensitivity not in SENSITIVITY_MODES:
            raise EdgeqError(f"unknown --sensitivity '{self.sensitivity}'; choose one of {', '.join(SENSITIVITY_MODES)}")
        if self.io not in ("int8", "float"):
            raise EdgeqError(f"--io must be int8 or float, not '{self.io}'")
        if self.input_layout not in ("nhwc", "nchw"):
            raise EdgeqError(f"--input-layout must be nhwc or nchw, not '{self.input_layout}'")
        self._check_numbers()
        if target_format == "c":
            check_c_name(self.name)

    def _check_numbers(self) -> None:
        if not _number(self.percentile) or not 50 < self.percentile <= 100:
            raise EdgeqError(f"--percentile must be a number above 50 and at most 100 (the share of values kept "
                             f"at each end, e.g. 99.99), not {self.percentile!r}")
        if not _number(self.rounding_budget) or self.rounding_budget <= 0:
            raise EdgeqError(f"--rounding-budget must be a positive number of seconds (e.g. 60), not "
                             f"{self.rounding_budget!r}")
        for opt in ("max_eval_samples", "max_calibration_samples"):
            v = getattr(self, opt)
            if v is not None and (not _integer(v) or v < 1):
                raise EdgeqError(f"--{opt.replace('_', '-')} must be a positive integer, not {v!r}; leave it out "
                                 "to use every sample")
        if self.target_sqnr is not None and not _number(self.target_sqnr):
            raise EdgeqError(f"--target-sqnr must be a finite number of dB (e.g. 40), not {self.target_sqnr!r}")
        if self.max_accuracy_drop is not None and (not _number(self.max_accuracy_drop) or self.max_accuracy_drop < 0):
            raise EdgeqError(f"--max-accuracy-drop must be a finite number of percentage points >= 0 (e.g. 0.5), "
                             f"not {self.max_accuracy_drop!r}")
        if self.input_shape is not None and (not self.input_shape or
                                             not all(_integer(d) and d > 0 for d in self.input_shape)):
            raise EdgeqError(f"--input-shape {tuple(self.input_shape)!r}: every dimension must be a positive integer")


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
