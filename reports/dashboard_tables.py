"""The parts a dashboard page is made of: sections with figures, charts and tables, and
how a table's values are shown on the page and written to its CSV file."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

from .charts import Chart
from .freshness import Freshness

# Rows a table shows on the page; its CSV file has them all.
ROWS_SHOWN = 50


@dataclass(frozen=True)
class Column:
    label: str
    # text, money, count, share (a fraction), ratio (ROI, a fraction), days, credit
    kind: str = "text"


@dataclass(frozen=True)
class Link:
    text: object
    url: str


@dataclass(frozen=True)
class Cell:
    text: str  # what the page shows
    value: str  # what the CSV file holds (and the cell's data-value)
    url: str = ""
    numeric: bool = False


def _plain(value: object, kind: str) -> str:
    """A value as it goes into the CSV file: numbers without grouping, fractions as such."""
    if value is None:
        return ""
    if kind == "money":
        return f"{Decimal(str(value)).quantize(Decimal('0.01'))}"
    if kind == "credit":
        return f"{float(cast(float, value)):.2f}"
    if kind in {"share", "ratio"}:
        return f"{float(cast(float, value)):.4f}"
    if kind == "days":
        return f"{float(cast(float, value)):.1f}"
    if kind == "count":
        return str(int(cast(int, value)))
    return str(value)


def _shown(value: object, kind: str) -> str:
    if value is None:
        return "—"
    if kind in {"money", "credit"}:
        return f"{Decimal(str(value)):,.2f}"
    if kind in {"share", "ratio"}:
        return f"{float(cast(float, value)):.1%}"
    if kind == "days":
        return f"{float(cast(float, value)):.1f}"
    if kind == "count":
        return f"{int(cast(int, value)):,}"
    return str(value)


@dataclass
class Table:
    key: str  # the ``table=`` of its CSV export
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[object]]
    note: str = ""
    more_url: str = ""  # the full list, when the table shows only some of it
    more_label: str = ""
    export_url: str = ""
    # How many rows there are when ``rows`` holds only the first ones (on the page).
    total: int | None = None
    # An attribution table: it links to the method page.
    method: bool = False

    def cells(self) -> list[list[Cell]]:
        return [
            [self._cell(value, column) for value, column in zip(row, self.columns, strict=True)]
            for row in self.rows[:ROWS_SHOWN]
        ]

    @property
    def cut(self) -> bool:
        return self.row_count > ROWS_SHOWN

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.total is None else self.total

    @staticmethod
    def _cell(value: object, column: Column) -> Cell:
        url = ""
        if isinstance(value, Link):
            url = value.url
            value = value.text
        return Cell(
            text=_shown(value, column.kind),
            value=_plain(value, column.kind),
            url=url,
            numeric=column.kind != "text",
        )

    def csv_rows(self) -> Iterable[list[str]]:
        yield [column.label for column in self.columns]
        for row in self.rows:
            yield [
                csv_safe(_plain(value.text if isinstance(value, Link) else value, column.kind))
                if column.kind == "text"
                else _plain(value.text if isinstance(value, Link) else value, column.kind)
                for value, column in zip(row, self.columns, strict=True)
            ]


# Spreadsheets run a cell that starts with one of these as a formula. Only text cells
# can: a number cell is written by this module (a negative amount stays a number).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass
class Figure:
    title: str
    value: str
    detail: str = ""


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    # For attribution figures: the run they are as of, and the changes since it.
    freshness: Freshness | None = None
    can_recompute: bool = False  # shows a manager's "Recompute now"
