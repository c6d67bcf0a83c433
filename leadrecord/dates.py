"""The one range of dates and times LeadRecord accepts, for every input path.

A lead's history and plans fall between 1900-01-01 and 2200-12-31; anything
outside is a typing mistake or an attack, not data. Refusing it at the door
keeps every later step (time-zone conversion, date arithmetic in the reports,
the database's own types, Python's ``datetime``) far from its limits: a time
of year 9999 with a negative offset is year 10000 in UTC, which PostgreSQL
stores and Python cannot read back.

Times are compared as moments (the offset applied), so the last accepted time
is 2200-12-31T23:59:59.999999Z whatever offset it is written with. Days are
compared as calendar days. The API serializers, ``POST events/``, the CSV
touch import, the page forms and the report query parameters all check here;
docs/dates-and-input.md describes the answers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2200, 12, 31)
EARLIEST_MOMENT = datetime.combine(EARLIEST_DAY, time.min, tzinfo=UTC)
LATEST_MOMENT = datetime.combine(LATEST_DAY, time.max, tzinfo=UTC)

RANGE_TEXT = f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"
DAY_OUT_OF_RANGE = f"Give a day {RANGE_TEXT}."
MOMENT_OUT_OF_RANGE = f"Give a time {RANGE_TEXT} (UTC)."
# The error code every path uses for a date or time outside the range.
OUT_OF_RANGE_CODE = "date_out_of_range"


def day_in_range(day: date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY


def moment_in_range(moment: datetime) -> bool:
    """Whether an aware time falls in the range once its offset is applied.

    Comparing aware datetimes subtracts them as timedeltas, so this never
    overflows, even for ``0001-01-01T00:00:00+01:00`` (which has no UTC form).
    """
    return EARLIEST_MOMENT <= moment <= LATEST_MOMENT


def validate_day_in_range(day: date | None) -> None:
    """A Django validator for form date fields."""
    if day is not None and not day_in_range(day):
        raise ValidationError(DAY_OUT_OF_RANGE, code=OUT_OF_RANGE_CODE)


def validate_moment_in_range(moment: datetime | None) -> None:
    """A Django validator for form datetime fields (aware values)."""
    if moment is not None and not moment_in_range(moment):
        raise ValidationError(MOMENT_OUT_OF_RANGE, code=OUT_OF_RANGE_CODE)


def moment_text(moment: datetime) -> str:
    """``moment`` as people read it: in the reporting time zone, to the minute, zone named.

    Pages and messages use this rather than ISO text (microseconds and a UTC offset
    mean nothing to a reader).
    """
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def duration_text(span: timedelta) -> str:
    """A non-negative span in the largest units that matter: "2 days 3 hours", "45 minutes"."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "day"), (hours, "hour")] if days else [(hours, "hour"), (minutes, "minute")]
    words = [f"{count} {unit}{'' if count == 1 else 's'}" for count, unit in parts if count]
    return " ".join(words) or "less than a minute"
