"""``edgeq.intmath`` in torch: the same fixed-point steps on int64 tensors holding int32 values
(or int64 accumulators), for the QAT module's integer forward pass. Every function mirrors the
numpy function of the same name in ``edgeq.intmath`` step by step; ``tests/qat`` checks them
against it on random and extreme values."""
from __future__ import annotations

import torch

from ..intmath import INT32_MAX, INT32_MIN


def as_long(x: torch.Tensor | int) -> torch.Tensor:
    return x.to(torch.int64) if isinstance(x, torch.Tensor) else torch.tensor(int(x), dtype=torch.int64)


def wrap_int32(x: torch.Tensor) -> torch.Tensor:
    """Two's complement wrap of int64 values to the int32 range (C's int32)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: torch.Tensor, b: torch.Tensor | int) -> torch.Tensor:
    b = as_long(b)
    ab = a * b
    v = ab + torch.where(ab >= 0, torch.tensor(1 << 30), torch.tensor(1 - (1 << 30)))
    high = (v + ((v >> 63) & ((1 << 31) - 1))) >> 31          # v / 2^31 rounded toward zero
    if bool((b == INT32_MIN).any()):       # b is a multiplier: never INT32_MIN in practice
        high = torch.where((a == INT32_MIN) & (b == INT32_MIN), torch.tensor(INT32_MAX), high)
    return high


def rounding_divide_by_pot(x: torch.Tensor, exponent: torch.Tensor | int) -> torch.Tensor:
    exponent = as_long(exponent)
    if bool(((exponent < 0) | (exponent > 31)).any()):
        raise ValueError("rounding_divide_by_pot exponent must be in [0, 31]")
    mask = torch.bitwise_left_shift(torch.ones_like(exponent), exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).to(torch.int64)
    return torch.bitwise_right_shift(x, exponent) + (remainder > threshold).to(torch.int64)


def multiply_by_quantized_multiplier(x: torch.Tensor, multiplier: torch.Tensor | int,
                                     shift: torch.Tensor | int) -> torch.Tensor:
    """x * M * 2^(shift-31) with TFLite's double rounding (``intmath.multiply_by_quantized_multiplier``)."""
    shift = as_long(shift)
    left = shift.clamp(min=0)
    right = (-shift).clamp(min=0)
    if bool((left == 0).all()):
        lo, hi = torch.aminmax(x) if x.numel() else (x.new_zeros(()), x.new_zeros(()))
        shifted = x if INT32_MIN <= int(lo) and int(hi) <= INT32_MAX else wrap_int32(x)
    else:
        shifted = wrap_int32(x * torch.bitwise_left_shift(torch.ones_like(left), left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_int64(x: torch.Tensor, multiplier: torch.Tensor | int,
                                           shift: torch.Tensor | int) -> torch.Tensor:
    """The 16x8 requantization of an int64 accumulator (Q15 multiplier, one rounding shift)."""
    multiplier, shift = as_long(multiplier), as_long(shift)
    reduced = torch.where(multiplier < 0x7FFF0000, (multiplier + (1 << 15)) >> 16, torch.tensor(0x7FFF))
    total_shift = 15 - shift
    one = torch.ones_like(total_shift)
    return wrap_int32(torch.bitwise_right_shift(x * reduced + torch.bitwise_left_shift(one, total_shift - 1),
                                                total_shift))


def requantize(acc: torch.Tensor, multiplier: torch.Tensor | int, shift: torch.Tensor | int,
               output_zero_point: int, act_min: int, act_max: int) -> torch.Tensor:
    out = multiply_by_quantized_multiplier(acc, multiplier, shift) + int(output_zero_point)
    return out.clamp(int(act_min), int(act_max))


def requantize_int64(acc: torch.Tensor, multiplier: torch.Tensor | int, shift: torch.Tensor | int,
                     act_min: int, act_max: int) -> torch.Tensor:
    return multiply_by_quantized_multiplier_int64(acc, multiplier, shift).clamp(int(act_min), int(act_max))


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's std::round on a float64 tensor (ties away from zero)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def exact_int(x: torch.Tensor) -> torch.Tensor:
    """A float64 tensor of whole numbers (a float64 convolution of integers below 2^53) as int64."""
    return torch.round(x).to(torch.int64)
