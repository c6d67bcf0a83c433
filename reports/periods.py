"""Report periods: days in the reporting time zone, the half-open span of moments they
cover, quarters, and the range a report reads when its ends are left out."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def reporting_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date) -> datetime:
    """The first moment of ``day`` in the reporting time zone."""
    return datetime.combine(day, time.min, tzinfo=reporting_zone())


def range_moments(start: date, end: date) -> tuple[datetime, datetime]:
    """``[first moment of start, first moment after end)``: the range as a half-open span."""
    return day_start(start), day_start(end + timedelta(days=1))


def quarter_of(day: date) -> str:
    """The ``YYYY-Qn`` period holding ``day`` (ContributionTarget.period)."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_first_day(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def range_or_default(start: date | None, end: date | None) -> tuple[date, date]:
    """The range a report reads when ``from`` or ``to`` is left out: ``to`` is today and
    ``from`` the first day of ``to``'s quarter."""
    end = end or timezone.localdate()
    return start or quarter_first_day(end), end
