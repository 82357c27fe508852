"""``edgeq.qat.prepare``: the build's steps up to the quantized graph, then the QAT module."""
from __future__ import annotations

from typing import Any

import torch

from ..build import eval_set, one_thread, private_tmp, target_accepts, target_options, trace_with_data
from ..errors import UnsupportedOpError
from ..ir import Graph
from ..frontend import load_model
from ..frontend.loader import model_label
from ..mixed_precision import PrecisionRequest
from ..options import BuildOptions
from ..pipeline import quantize_model
from ..targets import load_profile, target_module
from .kernel import get_kernel
from .module import QATModule


def prepare(model: str | torch.nn.Module | torch.export.ExportedProgram, calibration: Any, target: str,
            options: BuildOptions | None = None, learn_scales: bool = False, **kwargs: Any) -> QATModule:
    """Trace, calibrate and quantize ``model`` for ``target`` exactly as ``edgeq.build`` would
    (the same options: ``BuildOptions`` fields as keyword arguments), and return a QAT module
    computing that integer graph in torch. Train it with any loop and optimizer; ``edgeq.build``
    of the module emits the integers it computes.

    ``learn_scales``: the calibrated int8 activation scales become parameters trained by LSQ's
    gradient (``edgeq.qat.scales``; fixed and int16 scales stay fixed)."""
    opts = BuildOptions.from_kwargs(options, **kwargs)
    profile = load_profile(target, opts.targets_dir)
    opts.check(profile.format)
    label = model_label(model)
    if isinstance(model, str):
        model = load_model(model, opts.trust_model)
    with private_tmp() as tmp, one_thread():     # the threads a build uses: the same floats
        fgraph, cal = trace_with_data(model, calibration, opts, tmp)
        ev, labels = eval_set(None, None, cal, fgraph, opts, tmp)
        request = PrecisionRequest(opts.precision, list(opts.int16_layers), opts.target_sqnr, opts.max_accuracy_drop,
                                   ev, labels)
        request.check()
        options_ = target_options(opts, profile, label)
        on_target = target_accepts(target_module(profile), profile, options_, tmp)

        def accepts(qgraph: Graph) -> str | None:      # --precision auto: trainable and deployable
            return _qat_refusal(qgraph) or on_target(qgraph)
        result = quantize_model(fgraph, cal.arrays, method=opts.method, options=options_,
                                percentile=opts.percentile, precision=request, accepts=accepts)
    return QATModule(result, options_, target_module(profile).input_rounding, label, learn_scales)


def _qat_refusal(qgraph: Graph) -> str | None:
    """Why edgeq.qat cannot train through the quantized graph, or None."""
    for node in qgraph.nodes:
        try:
            get_kernel(node, qgraph)
        except UnsupportedOpError as e:
            return str(e)
    return None
