"""The charts: well-formed SVG, hostile labels kept as text, bars in proportion."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from agent.web.charts import Bar, Group, Svg, columns, rows
from tests.support.web import HOSTILE

NS = {"svg": "http://www.w3.org/2000/svg"}


def _parse(chart: Svg) -> ET.Element:
    return ET.fromstring(chart.markup)


def _bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if "bar" in r.get("class", "")]


def _title(element: ET.Element) -> str:
    found = element.find("svg:title", NS)
    assert found is not None and found.text is not None
    return found.text


def test_columns_stack_each_bar_in_proportion() -> None:
    chart = columns(
        "Activity",
        ["sent", "received"],
        [
            Group("bob@ourteam.example", [Bar("week 1", [2, 2]), Bar("week 2", [1, 0])]),
            Group("cat@ourteam.example", [Bar("week 1", [0, 8])]),
        ],
    )
    root = _parse(chart)
    assert _title(root) == "Activity"
    bars = _bars(root)
    assert len(bars) == 4  # a zero draws nothing
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[0] / heights[3] == pytest.approx(2 / 8)
    assert heights[2] / heights[3] == pytest.approx(1 / 8)
    assert _title(bars[0]) == "bob@ourteam.example, week 1: sent 2"
    first, second = bars[0], bars[1]
    assert float(second.get("y", "0")) + heights[1] == pytest.approx(float(first.get("y", "0")))


def test_rows_are_proportional_to_the_longest() -> None:
    root = _parse(rows("Cooling", ["before", "recent"], [Bar("Fay", [4, 1]), Bar("Gus", [2, 0])]))
    widths = [float(b.get("width", "0")) for b in _bars(root)]
    assert widths[1] / widths[0] == pytest.approx(0.25)
    assert widths[2] / widths[0] == pytest.approx(0.5)
    assert widths[3] == 0


@pytest.mark.parametrize("draw", ["columns", "rows"])
def test_hostile_labels_stay_text(draw: str) -> None:
    label = HOSTILE + ' "quoted" & <b>'
    if draw == "columns":
        chart = columns(HOSTILE, [HOSTILE], [Group(label, [Bar(label, [3])])])
    else:
        chart = rows(HOSTILE, [HOSTILE], [Bar(label, [3])])
    root = _parse(chart)  # well-formed: every label escaped
    tags = {element.tag.split("}")[1] for element in root.iter()}
    assert tags <= {"svg", "title", "g", "rect", "text", "line"}
    assert not any(name.startswith("on") for e in root.iter() for name in e.attrib)
    assert all("style" not in e.attrib for e in root.iter())
    assert "<script" not in chart.markup and "\u202e" not in chart.markup
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in chart.markup
    whole = [e.text for e in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any(
        t is not None and label.replace("\u202e", "").replace("\u202c", "") in t for t in whole
    )


def test_nothing_to_draw_is_still_a_chart() -> None:
    for chart in (columns("Empty", ["a"], []), rows("Empty", ["a"], [])):
        root = _parse(chart)
        assert _bars(root) == [] and _title(root) == "Empty"
