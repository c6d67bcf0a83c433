"""What every list page shares: django-tables2 tables sorted and paged from the query
string, and the same filtered rows as CSV.

The CSV is streamed row by row from the table's own data (the filtered, sorted
queryset the page shows, without paging), so it holds exactly what the filters
let the reader see, and a long list never sits in memory whole.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import django_tables2 as tables
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.html import format_html
from django_tables2 import RequestConfig

from .models import LedgerAction, LedgerEntry
from .templatetags.display import subject_url, subject_word

PER_PAGE = 50  # rows per page on every list
# A cell starting with one of these is a formula to a spreadsheet: a value someone
# typed as "=HYPERLINK(...)" must stay text when a colleague opens the file.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ListTable(tables.Table):
    """A list page's table: its caption names it, and wide tables scroll in their own box."""

    caption = ""

    class Meta:
        template_name = "includes/table.html"
        attrs = {"class": "striped"}


def table_configure(request: HttpRequest, table: tables.Table) -> tables.Table:
    """Sort by ``?sort=`` (any column shown; unknown names are ignored) and page by ``?page=``
    (past the end shows the last page)."""
    RequestConfig(request, paginate={"per_page": PER_PAGE}).configure(table)
    return table


def csv_safe(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose write returns what was written, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_rows(table: tables.Table) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in table.as_values():
        yield writer.writerow([csv_safe(cell) for cell in row])


def csv_response(table: tables.Table, filename: str) -> StreamingHttpResponse:
    """The table's rows (all pages, as filtered and sorted) as a CSV download."""
    response = StreamingHttpResponse(csv_rows(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def wants_csv(request: HttpRequest) -> bool:
    return request.GET.get("format") == "csv"


# --- the Record page -------------------------------------------------------------------

_ACTION_LABELS = dict(LedgerAction.choices)
TIME_FORMAT = "Y-m-d H:i"  # in the reporting time zone, to the minute


class LedgerTable(ListTable):
    caption = "Entries on the record"
    seq = tables.Column(verbose_name="#")
    occurred_at = tables.DateTimeColumn(verbose_name="Happened", format=TIME_FORMAT)
    recorded_at = tables.DateTimeColumn(verbose_name="Recorded", format=TIME_FORMAT)
    actor_label = tables.Column(verbose_name="Who")
    action = tables.Column(verbose_name="Action")
    subject = tables.Column(
        verbose_name="Subject", accessor="subject_type", order_by=("subject_type", "subject_id")
    )
    reason = tables.Column(verbose_name="Reason", default="")

    class Meta(ListTable.Meta):
        model = LedgerEntry
        fields = ("seq", "occurred_at", "recorded_at", "actor_label", "action", "subject", "reason")
        order_by = ("-seq",)
        empty_text = "No entries match these filters."

    def render_action(self, value: str) -> str:
        return _ACTION_LABELS.get(value, value)

    def render_subject(self, record: LedgerEntry) -> str:
        # Words, with the id only in the link's target; a target's period is its name.
        word = subject_word(record.subject_type)
        url = subject_url(record.subject_type, record.subject_id)
        if url:
            return format_html('<a href="{}">{}</a>', url, word)
        if record.subject_type == "target":
            return f"{word} {record.subject_id}"
        return word

    def value_subject(self, record: LedgerEntry) -> str:
        return f"{record.subject_type} {record.subject_id}"
