"""Op definitions: every registered op has a valid schema and consistent roles; ``check_attrs``
fills defaults and refuses what the schema does not know."""
import pytest

from edgeq.ir import Node
from edgeq.ops import REGISTRY, get_op
from edgeq.ops.base import ATTR_KINDS, OpDef, Padding


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_roles_are_consistent(name):
    op = REGISTRY[name]
    assert op.name == name
    assert all(a.kind in ATTR_KINDS for a in op.attributes)
    assert len({a.name for a in op.attributes}) == len(op.attributes)
    assert op.in_place in (None, "elementwise", "prefix")
    if op.weighted:
        assert op.filter_axis is not None
    if op.fusable_activation:
        assert "activation" in {a.name for a in op.attributes}
    if op.table or op.supports_int16 or op.in_place:
        assert type(op).run_int is not OpDef.run_int, "a role of the integer kernel needs one"
    if op.depthwise_form:
        assert get_op(op.depthwise_form).weighted


def test_check_attrs_fills_defaults_and_normalises_padding():
    node = Node("max_pool2d", ["x"], ["y"], {"kernel": (2, 2), "stride": (2, 2), "padding": [0, 1, 0, 1]}, "p")
    get_op("max_pool2d").check_attrs(node)
    assert node.attrs["padding"] == Padding(0, 1, 0, 1) and node.attrs["ceil_mode"] is False
    assert node.attrs["padding"].left == 1


def test_check_attrs_refuses_unknown_and_missing():
    with pytest.raises(ValueError, match="unknown attributes"):
        get_op("reshape").check_attrs(Node("reshape", ["x"], ["y"], {"shape": [4], "axis": 1}, "r"))
    with pytest.raises(ValueError, match="missing attribute 'perm'"):
        get_op("transpose").check_attrs(Node("transpose", ["x"], ["y"], {}, "t"))
