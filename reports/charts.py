"""Charts for the dashboards, drawn on the server as SVG with pygal.

The SVG is put in the page as it is: it needs no JavaScript and loads nothing
from elsewhere. pygal adds a script for its hover tooltips; it is taken out, so
the chart is the same with scripts on or off. Each chart carries a text
alternative (``summary``) that says the numbers it shows, and the page puts the
same numbers in a table beside it.

Drawing a chart takes some milliseconds; the SVG for the same numbers is kept
in the cache for a few minutes, so a dashboard opened again is not redrawn.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pygal
from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

# pygal puts an old-style import hook on ``sys.meta_path`` for its map plugins (not used
# here); Python warns about such a hook on every import that reaches it, so it is taken off.
sys.meta_path[:] = [
    finder for finder in sys.meta_path if type(finder).__name__ != "PluginImportFixer"
]

# Long enough to serve a manager's repeated looks, short enough that an
# attribution run's new numbers show soon; the key is the numbers themselves,
# so a stale chart is never shown for new numbers anyway.
CHART_CACHE_SECONDS = 300
# A bar chart with more categories than this is unreadable: it shows the
# largest ones and says so; the table beside it lists them all.
CHART_CATEGORIES_MAX = 12
WIDTH = 760
BAR_HEIGHT = 26  # per category on horizontal charts
LEGEND_ROW = 26  # per legend row after the first

# The palette: marketing blue, sales orange, then others; dark enough on white for text.
COLORS = (
    "#1f6feb",
    "#d9480f",
    "#2b8a3e",
    "#7048e8",
    "#c2255c",
    "#0b7285",
    "#5c940d",
    "#862e9c",
)
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#373c44",
    foreground_strong="#1d2127",
    foreground_subtle="#8891a0",
    opacity=".85",
    opacity_hover="1",
    colors=COLORS,
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
    title_font_size=16,
    value_font_size=12,
    tooltip_font_size=13,
    guide_stroke_color="#d5d9e0",
    major_guide_stroke_color="#c2c7d0",
    guide_stroke_dasharray="2,4",
)

Number = float | int | Decimal


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number | None]


@dataclass(frozen=True)
class Chart:
    title: str
    summary: str
    svg: SafeString


def money(value: float) -> str:
    return f"{value:,.2f}"


def money_axis(value: float) -> str:
    # Axis ticks need no cents; the text alternative and the tables keep them.
    return f"{value:,.0f}"


def count(value: float) -> str:
    return f"{value:,.0f}"


def share(value: float) -> str:
    return f"{value:.1%}"


FORMATS: dict[str, Callable[[float], str]] = {"money": money, "count": count, "share": share}
AXIS_FORMATS: dict[str, Callable[[float], str]] = {**FORMATS, "money": money_axis}


def bar_chart(
    *,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    value_format: str = "money",
    horizontal: bool = False,
    stacked: bool = False,
) -> Chart:
    """A bar chart of one or more series over ``labels`` (each series one value per label)."""
    labels = list(labels)
    kept = _largest(series, len(labels), stacked=stacked)
    shown = len(kept)
    shown_labels = [labels[index] for index in kept]
    values = [[_plain(item.values[index]) for index in kept] for item in series]
    chart_title = title
    if shown < len(labels):
        measure = " or ".join(item.name.lower() for item in series)
        chart_title = f"{title} (largest {shown} of {len(labels)} by {measure})"
    summary = _summary(chart_title, shown_labels, series, values, FORMATS[value_format])
    key = (
        "reports-chart:"
        + hashlib.sha256(
            json.dumps(
                [
                    chart_title,
                    shown_labels,
                    [s.name for s in series],
                    values,
                    value_format,
                    horizontal,
                    stacked,
                ]
            ).encode()
        ).hexdigest()
    )
    svg = cache.get(key)
    if svg is None:
        svg = _draw(
            labels=shown_labels,
            names=[item.name for item in series],
            values=values,
            value_format=value_format,
            horizontal=horizontal,
            stacked=stacked,
            summary=summary,
        )
        cache.set(key, svg, CHART_CACHE_SECONDS)
    return Chart(chart_title, summary, mark_safe(svg))  # noqa: S308 - pygal escapes every text


def _largest(series: Sequence[Series], count: int, *, stacked: bool) -> list[int]:
    """The categories a chart has room for, in their given order: all of them when they
    fit, else the largest by what the chart shows (a stacked bar's total, otherwise the
    longest of its bars), so a big cost with no revenue is not left out."""
    if count <= CHART_CATEGORIES_MAX:
        return list(range(count))

    def size(index: int) -> float:
        bars = [
            abs(float(value))
            for item in series
            if index < len(item.values) and (value := item.values[index]) is not None
        ]
        if not bars:
            return 0.0
        return sum(bars) if stacked else max(bars)

    largest = sorted(range(count), key=lambda index: (-size(index), index))
    return sorted(largest[:CHART_CATEGORIES_MAX])


def _plain(value: Number | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _summary(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: list[list[float | None]],
    fmt: Callable[[float], str],
) -> str:
    if not labels or not series:
        return f"{title}: no data."

    def said(value: float | None) -> str:
        return "none" if value is None else fmt(value)

    parts = []
    for index, label in enumerate(labels):
        if len(series) == 1:
            parts.append(f"{label} {said(values[0][index])}")
        else:
            pieces = ", ".join(
                f"{item.name} {said(row[index])}" for item, row in zip(series, values, strict=True)
            )
            parts.append(f"{label}: {pieces}")
    return f"{title}. " + "; ".join(parts) + "."


def _draw(
    *,
    labels: list[str],
    names: list[str],
    values: list[list[float | None]],
    value_format: str,
    horizontal: bool,
    stacked: bool,
    summary: str,
) -> str:
    kind = {
        (False, False): pygal.Bar,
        (True, False): pygal.HorizontalBar,
        (False, True): pygal.StackedBar,
        (True, True): pygal.HorizontalStackedBar,
    }[(horizontal, stacked)]
    legend_columns = min(len(names), 4) or 1
    legend_rows = -(-len(names) // legend_columns) if len(names) > 1 else 0
    height = (
        max(220, 110 + BAR_HEIGHT * len(labels) * (1 if stacked else max(1, len(names))))
        if horizontal
        else 360
    ) + LEGEND_ROW * max(0, legend_rows - 1)
    chart = kind(
        style=STYLE,
        width=WIDTH,
        height=min(height, 900),
        js=[],
        disable_xml_declaration=True,
        show_legend=len(names) > 1,
        legend_at_bottom=True,
        legend_at_bottom_columns=legend_columns,
        # Few value ticks: more overlap on the horizontal charts' axis.
        min_scale=3,
        max_scale=6,
        value_formatter=AXIS_FORMATS[value_format],
        print_values=False,
        truncate_label=40,
        truncate_legend=30,
        x_label_rotation=0 if horizontal or len(labels) <= 6 else 20,
        margin=8,
        spacing=12,
    )
    if horizontal:
        # pygal draws the first category at the bottom: the largest goes on top.
        labels = labels[::-1]
        values = [row[::-1] for row in values]
    chart.x_labels = labels
    for name, row in zip(names, values, strict=True):
        chart.add(name, row)
    chart.add_xml_filter(_accessible(summary))
    return str(chart.render(is_unicode=True))


def _accessible(summary: str) -> Callable[[Any], Any]:
    """An XML filter: no script, and the text alternative on the root as an image's label."""

    def apply(root: Any) -> Any:
        # pygal's tooltip script: the chart reads the same without it, and pages run no script.
        for parent in list(root.iter()):
            for child in list(parent):
                # Comments too: pygal's name the project's web pages.
                if child.tag == "script" or not isinstance(child.tag, str):
                    parent.remove(child)
        root.set("role", "img")
        root.set("aria-label", summary)
        root.set("class", "pygal-chart report-chart")
        return root

    return apply
