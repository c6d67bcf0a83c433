"""Filters the list pages share, and the Record page's own."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms

from .api_fields import MAX_ID
from .dates import validate_day_in_range
from .models import LedgerAction, LedgerEntry


class DayInput(forms.DateInput):
    input_type = "date"


def day_filter(field_name: str, lookup: str, label: str) -> django_filters.DateFilter:
    """A day bound on a time field (``gte``: from, ``lte``: to), read in the reporting
    time zone, inside the one allowed range of days."""
    return django_filters.DateFilter(
        field_name=field_name,
        lookup_expr=f"date__{lookup}",
        label=label,
        widget=DayInput(),
        validators=[validate_day_in_range],
    )


class LedgerFilter(django_filters.FilterSet):
    """The Record page: by action, by who acted, by person, by the days it happened."""

    action = django_filters.ChoiceFilter(
        choices=LedgerAction.choices, label="Action", empty_label="Any action"
    )
    actor = django_filters.CharFilter(
        field_name="actor_label", lookup_expr="icontains", label="Who", max_length=150
    )
    person = django_filters.NumberFilter(
        field_name="contact_id",
        label="Person number",
        min_value=1,
        max_value=MAX_ID,
        help_text="The number in a person's page address, e.g. 12 for /contacts/12/.",
    )
    occurred_from = day_filter("occurred_at", "gte", "Happened from")
    occurred_to = day_filter("occurred_at", "lte", "Happened to")

    class Meta:
        model = LedgerEntry
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.form.fields["actor"].help_text = "A user's or a system's name, or part of it."
