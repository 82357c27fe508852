"""QAT kernels of the elementwise ops: add, sub, mul, maximum, minimum, clamp, abs, leaky_relu,
prelu, requantize, squared_difference, batch_matmul, div, softmax, log_softmax, and the table
ops (a 256-entry lookup built by the op's ``quantize()`` from the current scales). Each integer
forward restates its op's ``run_int`` in torch; where the numpy kernel's result depends on a
small set of integer inputs alone (softmax's exp of a difference, div's operand pair), that set
is tabulated by the numpy kernel's own steps."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import intmath_elementwise as ie
from .. import intmath_softmax as ims
from ..intmath import INT32_MIN, multiply_by_quantized_multiplier, saturating_rounding_doubling_high_mul, wrap_int32
from ..ir import Graph, Node
from . import tintmath as tm
from .kernel import QatKernel, float_activation, long, out_dtype, qat_kernel, saturate


def _add(a: dict, x1: torch.Tensor, x2: torch.Tensor, sign2: int = 1) -> torch.Tensor:
    """``ops.add.add_int``."""
    v1 = (x1 - a["input1_zero_point"]) << a["left_shift"]
    v2 = ((x2 - a["input2_zero_point"]) * sign2) << a["left_shift"]
    s1 = tm.multiply_by_quantized_multiplier(v1, a["input1_multiplier"], a["input1_shift"])
    s2 = tm.multiply_by_quantized_multiplier(v2, a["input2_multiplier"], a["input2_shift"])
    out = tm.multiply_by_quantized_multiplier(s1 + s2, a["output_multiplier"], a["output_shift"])
    return (out + a["output_zero_point"]).clamp(a["act_min"], a["act_max"])


@qat_kernel
class Add(QatKernel):
    op = "add"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return _add(node.attrs, xs[0], xs[1])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, xs[0] + xs[1])


@qat_kernel
class Sub(QatKernel):
    op = "sub"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        if graph.t(node.inputs[1]).dtype == "int16":      # saturating negation, then int16 ADD
            return _add(node.attrs, xs[0], (-xs[1]).clamp(-32768, 32767))
        return _add(node.attrs, xs[0], xs[1], sign2=-1)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, xs[0] - xs[1])


@qat_kernel
class Mul(QatKernel):
    op = "mul"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        prod = (xs[0] - a["input1_zero_point"]) * (xs[1] - a["input2_zero_point"])
        out = tm.multiply_by_quantized_multiplier(prod, a["multiplier"], a["shift"]) + a["output_zero_point"]
        return out.clamp(a["act_min"], a["act_max"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, xs[0] * xs[1])


def requant(x: torch.Tensor, p: dict | None, dtype: str = "int8") -> torch.Tensor:
    """``ops.elementwise.apply_requant``: TFLite's saturating QUANTIZE, or the values as they are."""
    if p is None:
        return x
    y = tm.multiply_by_quantized_multiplier(x - p["input_zero_point"], p["multiplier"], p["shift"])
    return saturate(y + p["output_zero_point"], dtype)


class _MinMax(QatKernel):
    fn = staticmethod(torch.maximum)

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a, b = (requant(x, p) for x, p in zip(xs, node.attrs["requant"]))
        return self.fn(a, b).clamp(node.attrs["act_min"], node.attrs["act_max"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, self.fn(xs[0], xs[1]))


@qat_kernel
class Maximum(_MinMax):
    op = "maximum"


@qat_kernel
class Minimum(_MinMax):
    op = "minimum"
    fn = staticmethod(torch.minimum)


@qat_kernel
class Clamp(QatKernel):
    op = "clamp"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        y = tm.multiply_by_quantized_multiplier(xs[0] - a["input_zero_point"], a["multiplier"], a["shift"])
        return (y + a["output_zero_point"]).clamp(a["act_min"], a["act_max"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return float_activation(node, xs[0])


@qat_kernel
class Requantize(QatKernel):
    op = "requantize"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return requant(xs[0], node.attrs, out_dtype(node, graph))

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return xs[0]


@qat_kernel
class Abs(QatKernel):
    op = "abs"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        v = (xs[0] - a["input_zero_point"]).abs()
        if a["needs_rescale"]:
            v = tm.multiply_by_quantized_multiplier(v, a["multiplier"], a["shift"])
        return saturate(v + a["output_zero_point"], out_dtype(node, graph))

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return xs[0].abs()


@qat_kernel
class LeakyRelu(QatKernel):
    op = "leaky_relu"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        x = xs[0] - a["input_zero_point"]
        pos = tm.multiply_by_quantized_multiplier(x, a["multiplier_identity"], a["shift_identity"])
        neg = tm.multiply_by_quantized_multiplier(x, a["multiplier_alpha"], a["shift_alpha"])
        return (torch.where(x >= 0, pos, neg) + a["output_zero_point"]).clamp(-128, 127)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return F.leaky_relu(xs[0], node.attrs["alpha"])


@qat_kernel
class Prelu(QatKernel):
    op = "prelu"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        x = xs[0] - a["input_zero_point"]
        al = xs[1] - a["alpha_zero_point"]
        pos = tm.multiply_by_quantized_multiplier(x, a["multiplier_1"], a["shift_1"])
        neg = tm.multiply_by_quantized_multiplier(x * al, a["multiplier_2"], a["shift_2"])
        return (torch.where(x >= 0, pos, neg) + a["output_zero_point"]).clamp(-128, 127)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.where(xs[0] >= 0, xs[0], xs[1] * xs[0])


class _Table(QatKernel):
    """An int8 lookup table (``attrs['table']``, indexed by input + 128) rebuilt by the op's
    ``quantize()`` whenever the scales it depends on change; ``fn`` is the float surrogate."""

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def unsupported(self, node: Node, graph: Graph) -> str | None:
        if graph.t(node.inputs[0]).dtype != "int8":
            return "only its int8 (lookup table) form; keep the layer int8 (--precision)"
        return None

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return long(node.attrs["table"])[xs[0] + 128]

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return self.fn(node, xs[0])


@qat_kernel
class Sigmoid(_Table):
    op = "sigmoid"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


@qat_kernel
class Tanh(_Table):
    op = "tanh"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


@qat_kernel
class HardSwish(_Table):
    op = "hardswish"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)


@qat_kernel
class Gelu(_Table):
    op = "gelu"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x, approximate=node.attrs.get("approximate", "none"))


@qat_kernel
class Sqrt(_Table):
    op = "sqrt"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x.clamp(min=1e-12))


@qat_kernel
class Rsqrt(_Table):
    op = "rsqrt"

    def fn(self, node: Node, x: torch.Tensor) -> torch.Tensor:
        return torch.rsqrt(x.clamp(min=math.sqrt(float(torch.finfo(torch.float32).tiny))))



@qat_kernel
class Softmax(QatKernel):
    """TFLite's int8 softmax (``intmath_softmax.softmax_int8``): exp of each difference to the
    row maximum (a function of the difference alone: tabulated over -255..0 by the numpy
    kernel's own steps), the row's int32 sum, its fixed-point reciprocal (per row, by
    ``intmath_softmax.get_reciprocal``), one rounding multiply per element."""
    op = "softmax"

    def unsupported(self, node: Node, graph: Graph) -> str | None:
        return None if graph.t(node.inputs[0]).dtype == "int8" else "only its int8 form"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        x = xs[0].movedim(a["axis"], -1)
        diff = x - x.max(dim=-1, keepdim=True).values
        d = np.arange(-255, 1, dtype=np.int64)
        scaled = saturating_rounding_doubling_high_mul(
            wrap_int32(d * (np.int64(1) << a["input_left_shift"])), a["input_multiplier"])
        exp_q0 = ims.exp_on_negative_values(scaled, ims.SCALED_DIFF_INTEGER_BITS)
        exp_acc = ims.rescale(exp_q0, 0, ims.ACCUMULATION_INTEGER_BITS)
        exp_q0_t, exp_acc_t = long(exp_q0)[diff + 255], long(exp_acc)[diff + 255]
        valid = diff >= a["diff_min"]
        total = tm.wrap_int32(torch.where(valid, exp_acc_t, torch.zeros_like(exp_acc_t)).sum(-1, keepdim=True))
        shifted_scale, bits = ims.get_reciprocal(total.numpy(), ims.ACCUMULATION_INTEGER_BITS)
        exponent = long(bits) + 31 - 8
        if bool(((exponent < 0) | (exponent > 31)).any()):
            raise ValueError("softmax: sum of exps >= 512 in a row (TFLite's int8 softmax aborts on this input)")
        unsat = tm.rounding_divide_by_pot(tm.saturating_rounding_doubling_high_mul(long(shifted_scale), exp_q0_t),
                                          exponent)
        out = torch.where(valid, (unsat - 128).clamp(-128, 127), torch.tensor(-128))
        return out.movedim(-1, a["axis"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.softmax(xs[0], dim=node.attrs["axis"])


@qat_kernel
class SquaredDifference(QatKernel):
    """TFLite's SQUARED_DIFFERENCE (``intmath_elementwise.squared_difference_int``)."""
    op = "squared_difference"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs

        def scaled(x: torch.Tensor, zp: int, m: int, sh: int) -> torch.Tensor:
            return tm.rounding_divide_by_pot(tm.saturating_rounding_doubling_high_mul((x - zp) << a["left_shift"], m),
                                             -sh)
        diff = scaled(xs[0], a["input1_zero_point"], a["input1_multiplier"], a["input1_shift"]) - \
            scaled(xs[1], a["input2_zero_point"], a["input2_multiplier"], a["input2_shift"])
        out = tm.multiply_by_quantized_multiplier(tm.wrap_int32(diff * diff), a["output_multiplier"], a["output_shift"])
        return (out + a["output_zero_point"]).clamp(-128, 127)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return (xs[0] - xs[1]) ** 2


@qat_kernel
class BatchMatmul(QatKernel):
    """TFLite's BATCH_MATMUL (``ops.matmul``): the product of centred integers in float64 (exact),
    wrapped to int32 for int8, requantized; int64 requantization for 16x8."""
    op = "batch_matmul"

    def unsupported(self, node: Node, graph: Graph) -> str | None:
        return None if graph.layout == "nchw" else "QAT runs the NCHW quantized graph"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        x1 = (xs[0] - a["input1_zero_point"]).to(torch.float64)
        x2 = (xs[1] - a["input2_zero_point"]).to(torch.float64)
        acc = tm.exact_int(torch.matmul(x1, x2))
        dtype = out_dtype(node, graph)
        if dtype == "int16":
            y = tm.multiply_by_quantized_multiplier_int64(acc, a["multiplier"], a["shift"])
        else:
            y = tm.multiply_by_quantized_multiplier(tm.wrap_int32(acc), a["multiplier"], a["shift"])
        return saturate(y + a["output_zero_point"], dtype)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.matmul(xs[0], xs[1])


@qat_kernel
class Div(QatKernel):
    """TFLite's int8 DIV: its result depends on the two int8 operands alone, so the numpy kernel
    (``intmath_elementwise.div_int8``) is evaluated once on all 256 x 256 pairs for the node's
    current parameters and looked up."""
    op = "div"

    def __init__(self) -> None:
        self._tables: dict[tuple, torch.Tensor] = {}

    def _table(self, a: dict) -> torch.Tensor:
        key = tuple(int(a[k]) for k in ("input1_zero_point", "input2_zero_point", "output_zero_point",
                                        "multiplier", "shift"))
        if key not in self._tables:
            v = np.arange(-128, 128, dtype=np.int64)
            self._tables[key] = long(ie.div_int8(v[:, None], v[None, :], *key[:3], *key[3:], -128, 127))
        return self._tables[key]

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        x1, x2 = torch.broadcast_tensors(xs[0], xs[1])
        return self._table(node.attrs)[x1 + 128, x2 + 128]

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        den = xs[1]
        return torch.where(den != 0, xs[0] / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(den))


@qat_kernel
class LogSoftmax(QatKernel):
    """TFLite's int8 log-softmax (``intmath_softmax.log_softmax_int8``): the per-difference terms
    tabulated over -255..0 by the numpy kernel's steps, the per-row log of the sum by
    ``intmath_softmax``, the per-element tail in torch."""
    op = "log_softmax"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        a = node.attrs
        x = xs[0].movedim(a["axis"], -1)
        diff = x - x.max(dim=-1, keepdim=True).values
        d = np.arange(-255, 1, dtype=np.int64)
        q5 = multiply_by_quantized_multiplier(d, a["input_multiplier"], a["input_left_shift"])
        q12 = ims.rescale(ims.exp_on_negative_values(q5, ims.SCALED_DIFF_INTEGER_BITS), 0,
                          ims.ACCUMULATION_INTEGER_BITS)
        diff_q5, exp_q12 = long(q5)[diff + 255], long(q12)[diff + 255]
        valid = diff >= a["diff_min"]
        total = tm.wrap_int32(torch.where(valid, exp_q12, torch.zeros_like(exp_q12)).sum(-1, keepdim=True)).numpy()
        log_sum = ims.log_x_for_x_greater_than_or_equal_to_1(total, ims.ACCUMULATION_INTEGER_BITS,
                                                             ims.SCALED_DIFF_INTEGER_BITS)
        adjusted = np.maximum(a["diff_min"] - 1, multiply_by_quantized_multiplier(
            wrap_int32(log_sum + INT32_MIN), a["reverse_scaling_divisor"], a["reverse_scaling_left_shift"]))
        out = tm.rounding_divide_by_pot(tm.wrap_int32(diff_q5 - long(log_sum)),
                                        31 - ims.SCALED_DIFF_INTEGER_BITS - ims.LOG_SOFTMAX_OUTPUT_INTEGER_BITS) + 127
        out = torch.where(diff > long(adjusted), out.clamp(-128, 127), torch.tensor(-128))
        return out.movedim(-1, a["axis"])

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.log_softmax(xs[0], dim=node.attrs["axis"])


@qat_kernel
class L2Normalize(QatKernel):
    """TFLite's int8 L2_NORMALIZATION (``intmath_elementwise.l2_normalize_int8``): the int32 sum
    of squared centred inputs per row, its inverse square root as a fixed-point multiplier (per
    row, by the numpy kernel's ``inv_sqrt_multiplier_exp``), one rounding multiply per element."""
    op = "l2_normalize"

    def int_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        axis = node.attrs["axis"]
        v = xs[0].movedim(axis, -1) - node.attrs["input_zero_point"]
        acc = tm.wrap_int32((v * v).sum(-1, keepdim=True))
        inv, inv_shift = ie.inv_sqrt_multiplier_exp(acc.numpy())
        out = tm.multiply_by_quantized_multiplier(v, long(inv), long(inv_shift) + ie.L2_OUTPUT_SHIFT)
        return out.clamp(-128, 127).movedim(-1, axis)

    def float_forward(self, node: Node, graph: Graph, xs: list[torch.Tensor]) -> torch.Tensor:
        return F.normalize(xs[0], dim=node.attrs["axis"], eps=1e-12)
