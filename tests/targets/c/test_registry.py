"""edgeq.targets.c.lower.registry: the C target's lowering table, checked against the kernel
headers and sources and against the op definitions' roles."""
from __future__ import annotations

import re

from edgeq.ops import REGISTRY, get_op
from edgeq.targets.c import SUPPORTED_OPS, supported_ops
from edgeq.targets.c.cheaders import KERNEL_DIR_S16, kernel_api
from edgeq.targets.c.lower import LOWERINGS, int16_ops, int32_input_ops, kernel_files


def test_every_kernel_is_declared_and_defined() -> None:
    """Each kernel an entry names has a prototype in an API header, a parameter struct the
    headers define (or none), and is defined in the files the entry ships for it."""
    api = kernel_api()
    for op, entry in LOWERINGS.items():
        assert entry.kernels or entry.int16_kernels, op
        for k in entry.all_kernels:
            proto = api.prototype(k.function)
            assert proto.params is None or proto.params in api.structs, (op, k)
            assert k.params == proto.params and k.header == proto.header
            sources = "".join(api.path(f).read_text() for f in k.files)
            assert re.search(rf"^(void|int) {k.function}\(", sources, re.M), f"{op}: {k.function} not in {k.files}"


def test_int16_kernels_are_the_s16_sources() -> None:
    assert {f.name for f in KERNEL_DIR_S16.glob("*.c")} == kernel_files(int16=True) - kernel_files(int16=False)
    for entry in LOWERINGS.values():
        for k in entry.int16_kernels:
            assert "s16" in k.function or k in entry.kernels, k       # reshape's byte copy serves both


def test_table_reflects_the_op_roles() -> None:
    # the table ops are the ops with a 256-entry table (OpDef.table), sharing one kernel
    table_ops = sorted(name for name, op in REGISTRY.items() if op.table)
    assert table_ops and set(table_ops) <= set(LOWERINGS)
    assert len({LOWERINGS[op].kernels for op in table_ops}) == 1
    # an op with a 16x8 kernel is one the op definition allows in 16x8 mode, and every op that
    # may run in 16x8 mode has one (`edgeq targets --ops`: 16x8 "on every target that lowers it")
    # (a scan carries int16 values through its body's own 16x8 layers)
    assert int16_ops() and all(get_op(op).supports_int16 or get_op(op).attrs_of_kind("graph") for op in int16_ops())
    assert sorted(op for op in LOWERINGS if get_op(op).supports_int16) == sorted(
        op for op in int16_ops() if get_op(op).supports_int16)
    # listed ops: everything lowered but the ops passes insert (requantize)
    assert supported_ops() == list(SUPPORTED_OPS) == sorted(op for op in LOWERINGS if not get_op(op).internal)
    assert "requantize" in LOWERINGS and "requantize" not in SUPPORTED_OPS


def test_int32_inputs_are_the_id_readers() -> None:
    """int32 activations (token ids, masks) reach only the lowerings that read them as 4
    little-endian bytes: the embedding lookup, the cast to int8, and reshapes between."""
    assert int32_input_ops() == ["cast", "embedding", "reshape"]


def test_status_kernels_are_the_ones_returning_int() -> None:
    """Softmax and log-softmax return non-zero where TFLite's kernel rejects the input; the
    registry knows it from their prototypes."""
    status = sorted(op for op, e in LOWERINGS.items() if any(k.returns_status for k in e.all_kernels))
    assert status == ["log_softmax", "softmax"]
