"""Bar charts as inline SVG, drawn on the server: pure functions from figures to markup.

The reports are looked at more than read, and a chart drawn here needs no
script and loads nothing, so the pages keep their Content-Security-Policy.
Labels are names, subjects and addresses from mail: every one is made plain
(:func:`agent.runtime.inert_text.plain`) and escaped before it joins the
markup, and each bar carries a ``<title>`` that says what it is, for screen
readers and as a tooltip. Colours and type come from the stylesheet
(``.chart`` classes), never from ``style`` attributes, which the policy
refuses.

Two shapes: :func:`columns` (groups of vertical bars, each bar stacked by
series: activity per teammate per week, sources per day) and :func:`rows`
(horizontal bars, one per series on each line: cooling, coverage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from agent.runtime.inert_text import plain

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 960
LABEL_CHARS = 28
SERIES_CLASSES = 6
"""Series take the classes ``s0`` to ``s5`` in turn (the stylesheet's palette)."""


@dataclass(frozen=True)
class Svg:
    """Chart markup for a template: printed as it is (``__html__``), and it is no ``str``,
    so the page's ``finalize`` leaves it alone."""

    markup: str

    def __html__(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


@dataclass(frozen=True)
class Bar:
    """One bar: its label and one value per series, stacked in series order."""

    label: str
    values: Sequence[float]
    tick: str = ""
    """A short mark drawn under a column when there is room (``10-12`` for a week)."""


@dataclass(frozen=True)
class Group:
    """Bars side by side under one label (a teammate, a day)."""

    label: str
    bars: Sequence[Bar]


def text(value: object) -> str:
    """A label as inert, escaped SVG text."""
    return escape(plain(str(value)), quote=True)


def short(value: object, limit: int = LABEL_CHARS) -> str:
    """A label cut to ``limit`` characters (the ``<title>`` keeps it whole), escaped."""
    whole = plain(str(value))
    cut = whole if len(whole) <= limit else whole[: limit - 1] + "…"
    return escape(cut, quote=True)


def number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def _svg(title: str, height: int, body: list[str], legend: Sequence[str]) -> Svg:
    parts = [
        f'<svg xmlns="{SVG_NS}" class="chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" preserveAspectRatio="xMinYMin meet">',
        f"<title>{text(title)}</title>",
        *_legend(legend),
        *body,
        "</svg>",
    ]
    return Svg("".join(parts))


def _legend(series: Sequence[str]) -> list[str]:
    parts = ['<g class="legend">']
    x = 8
    for i, name in enumerate(series):
        parts.append(
            f'<rect class="s{i % SERIES_CLASSES}" x="{x}" y="6" width="12" height="12"/>'
            f'<text x="{x + 17}" y="16">{short(name, 24)}</text>'
        )
        x += 30 + 8 * min(len(name), 24)
    parts.append("</g>")
    return parts


def _rect(series: int, x: float, y: float, w: float, h: float, title: str) -> str:
    return (
        f'<rect class="bar s{series % SERIES_CLASSES}" x="{x:.1f}" y="{y:.1f}" '
        f'width="{w:.1f}" height="{h:.1f}"><title>{title}</title></rect>'
    )


COLUMN_TOP, COLUMN_PLOT, COLUMN_BOTTOM, COLUMN_LEFT = 34, 220, 44, 44
TICK_ROOM = 36
LABEL_ROOM = 56


def columns(title: str, series: Sequence[str], groups: Sequence[Group]) -> Svg:
    """Groups of vertical bars, each bar stacked by ``series``; heights proportional to the
    values, on one scale whose top is the tallest bar."""
    tallest = max((sum(bar.values) for g in groups for bar in g.bars), default=0.0)
    scale = COLUMN_PLOT / tallest if tallest > 0 else 0.0
    base = COLUMN_TOP + COLUMN_PLOT
    plot_width = WIDTH - COLUMN_LEFT - 8
    slot = plot_width / max(1, len(groups))
    stride = math.ceil(LABEL_ROOM / slot)
    body = [
        f'<line class="axis" x1="{COLUMN_LEFT}" y1="{base}" x2="{WIDTH - 8}" y2="{base}"/>',
        f'<text class="tick" x="{COLUMN_LEFT - 6}" y="{COLUMN_TOP + 4}" text-anchor="end">'
        f"{number(tallest)}</text>",
        f'<text class="tick" x="{COLUMN_LEFT - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for g, group in enumerate(groups):
        left = COLUMN_LEFT + g * slot
        body += _stacks(group, series, left, slot, scale)
        if g % stride == 0:
            body.append(
                f'<text class="label" x="{left + slot / 2:.1f}" y="{base + 32}" '
                f'text-anchor="middle">{short(group.label, max(6, int(slot / 8)))}'
                f"<title>{text(group.label)}</title></text>"
            )
    return _svg(title, COLUMN_TOP + COLUMN_PLOT + COLUMN_BOTTOM, body, series)


def _stacks(
    group: Group, series: Sequence[str], left: float, slot: float, scale: float
) -> list[str]:
    """One group's bars, each a stack of its series from the axis up."""
    base = COLUMN_TOP + COLUMN_PLOT
    width = slot * 0.8 / max(1, len(group.bars))
    parts: list[str] = []
    for b, bar in enumerate(group.bars):
        x, top = left + slot * 0.1 + b * width, float(base)
        for s, value in enumerate(bar.values):
            if value <= 0:
                continue
            height = value * scale
            top -= height
            tip = f"{text(group.label)}, {text(bar.label)}: {text(series[s])} {number(value)}"
            parts.append(_rect(s, x, top, max(1.0, width - 2), height, tip))
        if bar.tick and width >= TICK_ROOM:
            parts.append(
                f'<text class="tick" x="{x + width / 2:.1f}" y="{base + 14}" '
                f'text-anchor="middle">{short(bar.tick, 8)}</text>'
            )
    return parts


ROW_LABEL, ROW_BAR, ROW_GAP, ROW_TOP = 230, 12, 10, 30


def rows(title: str, series: Sequence[str], bars: Sequence[Bar]) -> Svg:
    """One line per bar, a horizontal bar per series on it; lengths proportional to the
    values, on one scale whose end is the longest bar."""
    longest = max((v for bar in bars for v in bar.values), default=0.0)
    plot = WIDTH - ROW_LABEL - 60
    scale = plot / longest if longest > 0 else 0.0
    line = ROW_BAR * max(1, len(series)) + ROW_GAP
    body: list[str] = []
    for r, bar in enumerate(bars):
        y = ROW_TOP + r * line
        body.append(
            f'<text class="label" x="{ROW_LABEL - 8}" y="{y + ROW_BAR * len(series) / 2 + 4:.1f}" '
            f'text-anchor="end">{short(bar.label)}<title>{text(bar.label)}</title></text>'
        )
        for s, value in enumerate(bar.values):
            top = y + s * ROW_BAR
            tip = f"{text(bar.label)}: {text(series[s])} {number(value)}"
            body.append(_rect(s, ROW_LABEL, top, value * scale, ROW_BAR - 2, tip))
            body.append(
                f'<text class="value" x="{ROW_LABEL + value * scale + 4:.1f}" '
                f'y="{top + ROW_BAR - 3}">{number(value)}</text>'
            )
    height = ROW_TOP + max(1, len(bars)) * line + 6
    return _svg(title, height, body, series)
