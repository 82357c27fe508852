"""The TFLite target's lowering table: IR op -> function that adds its TFLite operators, and
the ops it refuses on purpose (with the reason the unsupported-op error gives)."""
from __future__ import annotations

from typing import Callable

Lowering = Callable[..., None]     # (ModelBuilder, Node) -> None
LOWERINGS: dict[str, Lowering] = {}
#: IR ops this target deliberately does not lower, with the reason (named in the error)
REFUSALS: dict[str, str] = {}


def lowers(op: str) -> Callable[[Lowering], Lowering]:
    def deco(fn: Lowering) -> Lowering:
        LOWERINGS[op] = fn
        return fn
    return deco


def refuses(op: str, why: str) -> None:
    """Record that ``op`` is not lowered on purpose, and why (the unsupported-op error says it)."""
    REFUSALS[op] = why
