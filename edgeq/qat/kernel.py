"""The QAT kernel registry: for each op edgeq can train through, its integer forward pass in
torch (bit-exact with the op's ``run_int``) and its float surrogate (what the gradient follows).

A kernel is registered once per op with ``@qat_kernel``; the QAT module asks ``get_kernel`` and
keeps no list of op names. Integer values travel as int64 tensors, float values as float32.
Kernels read the node's integer parameters from ``node.attrs``, as computed by the op's own
``quantize()`` from the current scales and weights (``edgeq.qat.module``), so no quantization
rule is restated here: only the integer arithmetic of ``run_int`` is."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..quant import dtype_range


class QatKernel:
    """An op's QAT forward passes. ``xs`` hold activations and constants alike (weights of a
    weighted op: the current integers in ``int_forward``, the fake-quantized floats in
    ``float_forward``)."""
    op: str = ""

    def unsupported(self, node: Node, graph: Graph) -> str | None:
        """Why this use of the op cannot be trained through (None: it can)."""
        return None

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(self.op)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(self.op)


KERNELS: dict[str, QatKernel] = {}


def qat_kernel(cls: type[QatKernel]) -> type[QatKernel]:
    KERNELS[cls.op] = cls()
    return cls


def get_kernel(node: Node, graph: Graph) -> QatKernel:
    """The node's kernel, or UnsupportedOpError naming the op (and why, for a refused use)."""
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise UnsupportedOpError(f"op '{node.op}' at {node.where()} has no QAT kernel; edgeq.qat trains through: "
                                 f"{', '.join(sorted(KERNELS))}")
    why = kernel.unsupported(node, graph)
    if why:
        raise UnsupportedOpError(f"op '{node.op}' at {node.where()} is not supported by edgeq.qat: {why}")
    return kernel


# --- helpers shared by kernels ---------------------------------------------------------------

def long(a: object) -> torch.Tensor:
    """An integer attribute (int or numpy array) as an int64 tensor."""
    return torch.from_numpy(np.array(a, dtype=np.int64))


def channel_param(a: object, ndim: int, axis: int = 1) -> torch.Tensor:
    """A per-channel integer parameter shaped to broadcast along ``axis`` of an ``ndim`` tensor."""
    t = long(a).reshape(-1)
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape) if t.numel() > 1 else t.reshape(())


def out_dtype(node: Node, graph: Graph) -> str:
    return str(graph.t(node.outputs[0]).dtype)


def saturate(x: torch.Tensor, dtype: str) -> torch.Tensor:
    return x.clamp(*dtype_range(dtype))


def float_activation(node: Node, y: torch.Tensor) -> torch.Tensor:
    """The fused clamp of ``node`` on a float tensor (``ops.base.apply_float_activation``)."""
    act = node.attrs.get("activation")
    if not act:
        return y
    return y.clamp(min=act["min"], max=act["max"])


def index_pad(x: torch.Tensor, pads: list[tuple[int, int]], mode: str, fill: float | None = None) -> torch.Tensor:
    """numpy's pad (constant / reflect / edge) of every dimension, by gathering indices: the
    same for integer and float tensors, differentiable for the latter."""
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    for dim, (before, after) in enumerate(pads):
        if not before and not after:
            continue
        n = x.shape[dim]
        if np_mode == "constant":
            idx = np.pad(np.arange(n), (before, after), constant_values=-1)
        else:
            idx = np.pad(np.arange(n), (before, after), mode=np_mode)
        picked = x.index_select(dim, torch.from_numpy(np.maximum(idx, 0)))
        if np_mode == "constant":
            shape = [1] * x.dim()
            shape[dim] = -1
            keep = torch.from_numpy(idx >= 0).reshape(shape)
            picked = torch.where(keep, picked, torch.tensor(fill, dtype=x.dtype))
        x = picked
    return x

