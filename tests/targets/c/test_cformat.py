"""edgeq.targets.c.cformat: C identifiers, literals, arrays, initializers, comment text."""
from __future__ import annotations

import numpy as np

from edgeq.targets.c.cformat import (Names, c_array, c_float, c_identifier, c_int, comment, initializer_lines,
                                     model_name, shape_text)


def test_identifiers_are_valid_c() -> None:
    assert c_identifier("conv1.weight") == "conv1_weight"
    assert c_identifier("3x3") == "model_3x3"
    assert c_identifier("3x3", "layer") == "layer_3x3"
    assert c_identifier("int") == "int_"
    assert c_identifier("...") == "model"
    assert model_name({"name": "digits-v2"}) == "digits_v2"
    assert model_name(None) == "model"


def test_integer_and_float_literals() -> None:
    assert c_int(-(1 << 31)) == "(-2147483647 - 1)"      # an int32, not a long
    assert c_int(np.int64(7)) == "7"
    for value in (0.0, 1.0, 0.00390625, 1e-7, 3.4e38, -0.1, 12345678.0):
        text = c_float(value)
        assert text.endswith("f")
        assert np.float32(float(text[:-1])) == np.float32(value)
    assert c_float(2.0) == "2.0f"


def test_comment_text_cannot_end_the_comment() -> None:
    assert comment("a */ b /* c") == "a * / b / * c"
    assert comment("µ") == "?"


def test_arrays_and_shapes() -> None:
    text = c_array("int8_t", "w", np.array([1, -128, 3]), per_line=2)
    assert text == "const int8_t w[3] = {\n       1, -128,\n       3,\n};\n"
    assert shape_text((1, 28, 28, 1)) == "1x28x28x1"


def test_designated_initializers_nest_structs_and_arrays() -> None:
    lines = initializer_lines([("dims", 2), ("shape", [3, 4]), ("geometry", [("a", -(1 << 31)), ("bb", "sym")])])
    assert lines == [
        "    .dims  = 2,",
        "    .shape = {3, 4},",
        "    .geometry = {",
        "        .a  = (-2147483647 - 1),",
        "        .bb = sym,",
        "    },",
    ]


def test_names_are_unique_in_their_namespace() -> None:
    names = Names({"input"})
    assert [names.get("input"), names.get("conv"), names.get("conv"), names.get("conv")] == \
        ["input_1", "conv", "conv_1", "conv_2"]
