"""Lowering of ``batch_matmul``, the product of two activations (attention's Q K^T and A V):
each operand and the output described by element strides over torch's view (the last two
dimensions are the matrix, the rest broadcast batch dimensions), so NHWC-stored 4-D operands
and broadcast batches need no copies."""
from __future__ import annotations

import numpy as np

from ....errors import UnsupportedOpError
from ..cheaders import max_dims
from ..layer import LayerCode
from ..strides import collapse_dims, padded, row_major_strides
from .conv import MAX_SHIFT_16X8
from .registry import kernel, lowers

BATCH_MATMUL = kernel("edgeq_batch_matmul_s8", "edgeq_batch_matmul.c")
BATCH_MATMUL_S16 = kernel("edgeq_batch_matmul_s16", "edgeq_batch_matmul_s16.c")

#: int8 operands offset by their zero points: each product is at most 255 * 255 in magnitude,
#: and the int32 accumulator must not overflow over the depth
MAX_PRODUCT_S8 = 255 * 255
#: the 16x8 requantization takes accumulators in [-2^47, 2^47); a product is at most 2^30
MAX_DEPTH_S16 = 1 << 17
INT32_MAX = (1 << 31) - 1


def torch_view(shape: tuple[int, ...], nhwc: bool) -> tuple[list[int], list[int]]:
    """(torch shape, element strides into the stored tensor): NHWC-stored 4-D tensors are read
    as NCHW, where the product's dimensions are."""
    strides = row_major_strides(shape)
    if nhwc and len(shape) == 4:
        order = (0, 3, 1, 2)
        return [int(shape[d]) for d in order], [strides[d] for d in order]
    return [int(d) for d in shape], strides


def _batch_strides(shape: list[int], strides: list[int], rank: int) -> list[int]:
    """Strides of an operand's batch dimensions read at every index of ``rank`` batch dimensions
    (numpy broadcasting: missing and size-1 dimensions have stride 0)."""
    lead = [1] * (rank - len(shape)) + shape
    st = [0] * (rank - len(strides)) + strides
    return [0 if n == 1 else s for n, s in zip(lead, st)]


@lowers("batch_matmul", kernels=(BATCH_MATMUL,), int16=(BATCH_MATMUL_S16,))
def _batch_matmul(layer: LayerCode) -> None:
    node, a = layer.node, layer.attrs
    nhwc = layer.graph.layout == "nhwc"
    if any(layer.graph.t(n).is_constant for n in node.inputs):
        raise UnsupportedOpError(f"batch_matmul at {node.where()}: the C target multiplies two activations "
                                 f"(a constant operand is a linear layer)")
    (s1, t1), (s2, t2) = (torch_view(layer.input(i).shape, nhwc) for i in (0, 1))
    so, to = torch_view(layer.output.shape, nhwc)
    rows, depth, cols = s1[-2], s1[-1], s2[-1]
    lead = [int(v) for v in np.broadcast_shapes(tuple(s1[:-2]), tuple(s2[:-2]))]
    if layer.int16:
        if int(a["shift"]) > MAX_SHIFT_16X8:
            raise UnsupportedOpError(f"batch_matmul at {node.where()}: 16x8 requantization shift above "
                                     f"{MAX_SHIFT_16X8}")
        if depth > MAX_DEPTH_S16:
            raise UnsupportedOpError(f"batch_matmul at {node.where()}: a 16x8 product over {depth} values; "
                                     f"the C kernel takes at most {MAX_DEPTH_S16}")
    elif depth * MAX_PRODUCT_S8 > INT32_MAX:
        raise UnsupportedOpError(f"batch_matmul at {node.where()}: a product over {depth} values could "
                                 f"overflow the int32 accumulator")
    rank = len(lead)
    b1 = _batch_strides(s1[:-2], t1[:-2], rank)
    b2 = _batch_strides(s2[:-2], t2[:-2], rank)
    bo = _batch_strides(so[:-2], to[:-2], rank)
    batch, (b1, b2, bo) = collapse_dims(lead, [b1, b2, bo])
    n = max_dims()
    if len(batch) > n:
        raise UnsupportedOpError(f"batch_matmul at {node.where()}: {len(batch)} batch dimensions; the C kernel "
                                 f"takes at most {n} (see `edgeq targets --ops`)")
    layer.note(f"{int(np.prod(batch))} x ({rows} x {depth}) @ ({depth} x {cols})")
    layer.call(layer.kernel_for(BATCH_MATMUL, BATCH_MATMUL_S16), [
        ("batch_dims", len(batch)), ("batch_shape", padded(batch, n, 1)),
        ("input1_batch_strides", padded(b1, n, 0)), ("input2_batch_strides", padded(b2, n, 0)),
        ("output_batch_strides", padded(bo, n, 0)),
        ("rows", rows), ("cols", cols), ("depth", depth),
        ("input1_row_stride", t1[-2]), ("input1_depth_stride", t1[-1]),
        ("input2_depth_stride", t2[-2]), ("input2_col_stride", t2[-1]),
        ("output_row_stride", to[-2]), ("output_col_stride", to[-1]),
        ("input1_offset", -int(a["input1_zero_point"])), ("input2_offset", -int(a["input2_zero_point"])),
        ("output_offset", a["output_zero_point"]), ("multiplier", a["multiplier"]), ("shift", a["shift"])])
