"""edgeq.options.BuildOptions: one set of build options for the CLI and the API."""
import pytest

from edgeq.errors import EdgeqError
from edgeq.options import BuildOptions


def test_keywords_fill_fields_over_a_base():
    base = BuildOptions(method="minmax", name="kws")
    o = BuildOptions.from_kwargs(base, precision="16x8", int16_layers=None)
    assert (o.method, o.name, o.precision, o.int16_layers) == ("minmax", "kws", "16x8", [])
    assert base.precision == "auto"                                   # the base is not changed


def test_unknown_keyword_is_refused_with_the_known_ones():
    with pytest.raises(TypeError, match="unknown build option.*methd.*method"):
        BuildOptions.from_kwargs(methd="mse")


@pytest.mark.parametrize("field, value, message", [
    ("method", "kl", "unknown calibration method"), ("precision", "int4", "unknown precision"),
    ("io", "int16", "--io"), ("input_layout", "chw", "--input-layout"), ("rounding", "floor", "unknown rounding"),
    ("rounding_budget", -1.0, "--rounding-budget"), ("rounding_budget", float("inf"), "--rounding-budget")])
def test_values_no_build_can_use_are_refused(field, value, message):
    with pytest.raises(EdgeqError, match=message):
        BuildOptions.from_kwargs(**{field: value}).check()
