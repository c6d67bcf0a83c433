"""The dashboards' pickers: a date range (``from``/``to``, or a quick ``period``), and for the
attribution reports a model and a grouping.

Dates are whole days in the reporting time zone (``settings.TIME_ZONE``), both
ends included, the same as the report API. A quick period is resolved to its
dates on the server, so a link such as ``?period=last_quarter`` always means
the quarter before today's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from django import forms
from django.utils import timezone

from leadrecord.dates import validate_day_in_range

from .metrics import quarter_first_day
from .models import AttributionModel
from .selectors import GROUPINGS

# Longer ranges are refused: no report needs more, and each costs a scan of its days.
RANGE_MAX_DAYS = 3660  # ten years
# What a dashboard shows when no range is asked for.
DEFAULT_PERIOD = "year_to_date"

TABLE_KEY_MAX_LENGTH = 40

GROUPING_LABELS = {"channel": "Channel", "campaign": "Campaign", "team": "Team"}


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def period_range(period: str, today: date) -> DateRange:
    """The inclusive days of a quick period, seen from ``today``."""
    if period == "this_quarter":
        return DateRange(quarter_first_day(today), today)
    if period == "last_quarter":
        this_quarter = quarter_first_day(today)
        return DateRange(
            quarter_first_day(this_quarter - timedelta(days=1)), this_quarter - timedelta(1)
        )
    if period == "year_to_date":
        return DateRange(date(today.year, 1, 1), today)
    raise ValueError(period)


PERIOD_CHOICES = [
    ("this_quarter", "This quarter"),
    ("last_quarter", "Last quarter"),
    ("year_to_date", "Year to date"),
]


@dataclass(frozen=True)
class QuickPeriod:
    key: str
    label: str
    range: DateRange
    current: bool


def quick_periods(today: date, chosen: DateRange | None) -> list[QuickPeriod]:
    periods = []
    for key, label in PERIOD_CHOICES:
        days = period_range(key, today)
        periods.append(QuickPeriod(key, label, days, days == chosen))
    return periods


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class ReportRangeForm(forms.Form):
    """``from`` and ``to`` (both included), or ``period``; neither means the default period.

    After ``is_valid()``, ``date_range`` holds the days to report on.
    """

    to = forms.DateField(
        label="To",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=DateInput(),
        help_text="Last day, included.",
        validators=[validate_day_in_range],
    )
    period = forms.ChoiceField(label="Period", required=False, choices=PERIOD_CHOICES)
    # ``?format=csv&table=KEY`` asks for one of the page's tables as a CSV file.
    format = forms.ChoiceField(
        label="Format", required=False, choices=[("html", "Page"), ("csv", "CSV")]
    )
    table = forms.SlugField(label="Table", required=False, max_length=TABLE_KEY_MAX_LENGTH)

    field_order = ["from", "to", "period"]

    def __init__(self, data: Any = None, *, today: date | None = None) -> None:
        super().__init__(data)
        # ``from`` is a keyword in Python: the field is declared here under its real name.
        self.fields["from"] = forms.DateField(
            label="From",
            required=False,
            input_formats=["%Y-%m-%d"],
            widget=DateInput(),
            help_text="First day, included.",
            validators=[validate_day_in_range],
        )
        self.order_fields(self.field_order)
        self.today = today or timezone.localdate()
        self.date_range: DateRange | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        start: date | None = cleaned.get("from")
        end: date | None = cleaned.get("to")
        period = cleaned.get("period")
        if period and (start or end):
            raise forms.ValidationError(
                {"period": "Choose a period or a from/to range, not both."}, code="both"
            )
        if period or not (start or end):
            self.date_range = period_range(period or DEFAULT_PERIOD, self.today)
            return cleaned
        if start is None:  # only ``to``: from the first of its year
            start = date(cast(date, end).year, 1, 1)
        if end is None:  # only ``from``: up to today
            end = max(self.today, start)
        if start > end:
            raise forms.ValidationError({"to": "'To' comes before 'From'."}, code="order")
        if (end - start).days + 1 > RANGE_MAX_DAYS:
            raise forms.ValidationError(
                {"from": f"A range is at most {RANGE_MAX_DAYS} days."}, code="too_long"
            )
        self.date_range = DateRange(start, end)
        return cleaned

    def field_values(self) -> dict[str, str]:
        """The query that asks for the same range as explicit days (for links and exports)."""
        if self.date_range is None:
            raise ValueError("field_values() needs a valid form")
        return {
            "from": self.date_range.start.isoformat(),
            "to": self.date_range.end.isoformat(),
        }


class AttributionReportForm(ReportRangeForm):
    """The range, plus the model whose credit is shown and what it is grouped by."""

    model = forms.ChoiceField(label="Model", required=False, choices=AttributionModel.choices)
    group_by = forms.ChoiceField(
        label="Group by", required=False, choices=list(GROUPING_LABELS.items())
    )

    field_order = ["from", "to", "period", "model", "group_by"]

    def clean_model(self) -> str:
        return self.cleaned_data.get("model") or AttributionModel.LINEAR

    def clean_group_by(self) -> str:
        return self.cleaned_data.get("group_by") or GROUPINGS[0]

    def field_values(self) -> dict[str, str]:
        return {
            **super().field_values(),
            "model": self.cleaned_data["model"],
            "group_by": self.cleaned_data["group_by"],
        }
