"""The report's SVG chart writer: ticks, coordinates, and well-formed deterministic documents."""
from __future__ import annotations

from xml.etree import ElementTree

from edgeq.svg_chart import Chart, nice_ticks, tick_label

SVG = "{http://www.w3.org/2000/svg}"


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0.0, 44.0) == [0, 10, 20, 30, 40]     # inside the range: 50 would be off the axis
    assert nice_ticks(-1.0, 1.0) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert nice_ticks(0.0, 0.9)[:3] == [0.0, 0.2, 0.4]
    assert tick_label(1e-4) == "0.0001" and tick_label(20.0) == "20" and tick_label(2.5) == "2.5"


def test_linear_and_log_coordinates() -> None:
    c = Chart(200, 100, 0, 10, 0, 100, left=0, right=0, top=0, bottom=0)
    assert (c.px(0), c.px(10), c.py(0), c.py(100), c.py(50)) == (0, 200, 100, 0, 50)
    log = Chart(200, 100, 0, 10, 1, 1000, log_y=True, left=0, right=0, top=0, bottom=0)
    assert abs(log.py(10) - 100 * 2 / 3) < 1e-9 and abs(log.py(100) - 100 / 3) < 1e-9
    assert log.py(0) == 100    # a zero count sits on the axis, not at -inf


def test_bars_have_heights_in_proportion_and_the_document_is_deterministic() -> None:
    def doc() -> bytes:
        c = Chart(300, 200, -0.5, 2.5, 0, 40, title="t <&>", ylabel="y")
        c.bars([0, 1, 2], [10, 20, 40], 0.5, "#123456", "label")
        c.hline(30, "#00ff00", "5,3", "rule")
        return c.render([(0, "a"), (1, "b"), (2, "c")])
    a = doc()
    assert a == doc()
    root = ElementTree.fromstring(a)
    bars = [e for e in root.iter(f"{SVG}rect") if e.get("fill") == "#123456" and e.get("width") != "12"]
    heights = [float(b.get("height")) for b in bars]
    assert len(heights) == 3 and abs(heights[1] - 2 * heights[0]) < 0.02 and abs(heights[2] - 4 * heights[0]) < 0.02
    texts = [e.text for e in root.iter(f"{SVG}text")]
    assert "t <&>" in texts and {"a", "b", "c", "label", "rule"} <= set(texts)
