"""Filters for what people read: times in the reporting zone, spans in words."""

from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.urls import NoReverseMatch, reverse

from leadrecord.dates import duration_text, moment_text
from leadrecord.models import LedgerAction

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


_ACTION_LABELS = dict(LedgerAction.choices)
# A ledger subject's page, where it has one (url name by subject type).
_SUBJECT_PAGES = {"contact": "contact", "deal": "deal", "ruleset": "ruleset"}
_SUBJECT_WORDS = {"contact": "Person", "ruleset": "Ruleset", "target": "Target for"}


@register.filter
def action_label(action: str) -> str:
    """``{{ entry.action|action_label }}``: "Person erased" for ``contact.erase``."""
    return _ACTION_LABELS.get(action, action)


@register.filter
def subject_word(subject_type: str) -> str:
    """What a ledger subject is, in words ("Person" for ``contact``)."""
    return _SUBJECT_WORDS.get(subject_type, subject_type.replace("_", " ").capitalize())


@register.filter
def subject_url(subject_type: str, subject_id: str) -> str:
    """The page of a ledger subject, or "" when it has none."""
    name = _SUBJECT_PAGES.get(subject_type)
    if name is None or not str(subject_id).isdigit():
        return ""
    try:
        return reverse(name, args=[int(subject_id)])
    except NoReverseMatch:
        return ""
