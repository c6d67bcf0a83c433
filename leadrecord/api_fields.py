"""Serializer fields shared by every API: times with offsets, ``occurred_at``, days, ids."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from .dates import (
    DAY_OUT_OF_RANGE,
    MOMENT_OUT_OF_RANGE,
    OUT_OF_RANGE_CODE,
    RANGE_TEXT,
    day_in_range,
    moment_in_range,
)

# Clocks of calling systems drift; a time this far ahead of ours still counts as now.
FUTURE_TOLERANCE = timedelta(minutes=5)
# Ids travel as PostgreSQL bigints.
MAX_ID = 2**63 - 1


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO-8601 time that must carry a UTC offset (docs/api.md: no offset is a 400), inside
    the accepted range (``leadrecord.dates``)."""

    default_error_messages = {
        "naive": "Give the time with a UTC offset, e.g. 2026-05-01T09:30:00+00:00.",
        OUT_OF_RANGE_CODE: MOMENT_OUT_OF_RANGE,
    }

    def to_internal_value(self, value: Any) -> datetime:
        parsed: datetime | None = value if isinstance(value, datetime) else None
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
        if parsed is not None and timezone.is_naive(parsed):
            self.fail("naive")
        # Checked before DRF converts to UTC, which some of these times do not survive.
        if parsed is not None and not moment_in_range(parsed):
            self.fail(OUT_OF_RANGE_CODE)
        moment: datetime = super().to_internal_value(value)
        if not moment_in_range(moment):
            self.fail(OUT_OF_RANGE_CODE)
        return moment


class OccurredAtField(AwareDateTimeField):
    """When it happened: defaults to now, may be in the past, never in the future."""

    default_error_messages = {"future": "This time is in the future."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            f"When it happened (ISO-8601 with offset, {RANGE_TEXT}); defaults to now; "
            "a future time is refused.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> datetime:
        moment = super().to_internal_value(value)
        if moment > timezone.now() + FUTURE_TOLERANCE:
            self.fail("future")
        return moment


class DayField(serializers.DateField):
    """A day (``YYYY-MM-DD``) inside the accepted range (``leadrecord.dates``)."""

    default_error_messages = {OUT_OF_RANGE_CODE: DAY_OUT_OF_RANGE}

    def to_internal_value(self, value: Any) -> date:
        day: date = super().to_internal_value(value)
        if not day_in_range(day):
            self.fail(OUT_OF_RANGE_CODE)
        return day


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class IdFilter(django_filters.NumberFilter):
    """An id in the query string: a whole number that fits a bigint, else a 400 naming it.

    ``NumberFilter`` takes any decimal (``-6e48``), which the database cannot
    compare with an id column and answers with an error (a 500).
    """

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
