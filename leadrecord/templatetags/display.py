"""Filters for what people read: times in the reporting zone, spans in words."""

from datetime import datetime, timedelta
from decimal import Decimal

from django import template

from leadrecord.dates import duration_text, moment_text

register = template.Library()


@register.filter
def when(value: datetime | None) -> str:
    """``{{ handoff.due_at|when }}``: "2026-12-05 14:33 UTC"; empty for None."""
    return moment_text(value) if isinstance(value, datetime) else ""


@register.filter
def span(value: timedelta | None) -> str:
    """``{{ late_by|span }}``: "2 days 3 hours"."""
    return duration_text(value) if isinstance(value, timedelta) else ""


@register.filter
def percent(value: Decimal | None) -> str:
    """``{{ 0.455|percent }}``: "45.5 %"; a share as people type it."""
    if value is None:
        return ""
    number = (Decimal(value) * 100).quantize(Decimal("0.01")).normalize()
    return f"{number:f} %"
