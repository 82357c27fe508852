"""The per-layer profile section of report.md and its bar chart."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from edgeq import plots, report

PROFILE = {
    "rows": [{"layer": 0, "op": "conv2d", "kernel": "edgeq_conv2d_im2col_s8", "instructions": 3000, "macs": 1500,
              "instructions_per_mac": 2.0, "share": 0.75},
             {"layer": 1, "op": "softmax", "kernel": "edgeq_softmax_s8", "instructions": 1000, "macs": 0,
              "instructions_per_mac": None, "share": 0.25}],
    "total_instructions": 4000, "invoke_overhead_instructions": 0, "note": "counted by the plugin",
}


def test_section_has_one_row_per_layer_with_counts_per_mac_and_share() -> None:
    lines = report.layer_profile_section(PROFILE)
    assert "## Per-layer profile" in lines
    rows = [ln for ln in lines if ln.startswith("| 0 ") or ln.startswith("| 1 ")]
    assert rows == ["| 0 | conv2d | `edgeq_conv2d_im2col_s8` | 3,000 | 1,500 | 2.00 | 75.0% |",
                    "| 1 | softmax | `edgeq_softmax_s8` | 1,000 | 0 |  | 25.0% |"]
    assert report.layer_profile_section(None) == []


def test_chart_is_a_deterministic_svg(tmp_path: Path) -> None:
    a = plots.layer_profile_chart(PROFILE["rows"], tmp_path / "a.svg").read_bytes()
    b = plots.layer_profile_chart(PROFILE["rows"], tmp_path / "b.svg").read_bytes()
    assert a == b
    root = ElementTree.fromstring(a)     # well-formed XML, one bar per layer, the per-MAC figure shown
    bars = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("fill") == plots.BLUE]
    assert len(bars) == 2 and float(bars[0].get("height")) > 2.9 * float(bars[1].get("height"))
    assert "2.00" in [e.text for e in root.iter("{http://www.w3.org/2000/svg}text")]
