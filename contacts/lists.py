"""The touch list: its filters and table (the contact list, which reads handoffs, is the
handoff app's)."""

from __future__ import annotations

import django_filters
import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from leadrecord.filters import day_filter
from leadrecord.tables import TIME_FORMAT, ListTable

from . import selectors
from .models import Organization, Touch, TouchKind

_KIND_LABELS = dict(TouchKind.choices)


def channel_label(key: str) -> str:
    """A channel's key as words: ``sales_call`` reads "Sales call"."""
    return key.replace("_", " ").capitalize()


class TouchFilter(django_filters.FilterSet):
    channel = django_filters.ModelChoiceFilter(
        queryset=selectors.channels_all(), label="Channel", empty_label="Any channel"
    )
    campaign = django_filters.ModelChoiceFilter(
        queryset=selectors.campaigns_all(), label="Campaign", empty_label="Any campaign"
    )
    organization = django_filters.ModelChoiceFilter(
        field_name="contact__organization",
        queryset=Organization.objects.all(),
        label="Organization",
        empty_label="Any organization",
    )
    kind = django_filters.ChoiceFilter(
        choices=TouchKind.choices, label="Kind", empty_label="Any kind"
    )
    occurred_from = day_filter("occurred_at", "gte", "Happened from")
    occurred_to = day_filter("occurred_at", "lte", "Happened to")

    class Meta:
        model = Touch
        fields: list[str] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.form.fields["channel"].label_from_instance = lambda channel: channel_label(channel.key)


class TouchTable(ListTable):
    caption = "Touches"
    occurred_at = tables.DateTimeColumn(verbose_name="When", format=TIME_FORMAT)
    person = tables.Column(
        verbose_name="Person",
        accessor="contact__last_name",
        order_by=("contact__last_name", "contact__first_name", "contact__email"),
        empty_values=(),  # a person without a last name is still named
    )
    channel = tables.Column(verbose_name="Channel", accessor="channel__key")
    kind = tables.Column(verbose_name="Kind")
    campaign = tables.Column(verbose_name="Campaign", accessor="campaign__name", default="—")
    source_system = tables.Column(verbose_name="From", default="By hand")
    recorded_at = tables.DateTimeColumn(verbose_name="Recorded", format=TIME_FORMAT)

    class Meta(ListTable.Meta):
        model = Touch
        fields = ()
        sequence = (
            "occurred_at",
            "person",
            "channel",
            "kind",
            "campaign",
            "source_system",
            "recorded_at",
        )
        order_by = ("-occurred_at",)
        empty_text = "No touches match these filters."

    def render_person(self, record: Touch) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("contact", args=[record.contact_id]), record.contact
        )

    def value_person(self, record: Touch) -> str:
        return record.contact.display_name

    def render_channel(self, value: str) -> str:
        return channel_label(value)

    def value_channel(self, value: str) -> str:
        return channel_label(value)

    def render_kind(self, value: str) -> str:
        return _KIND_LABELS.get(value, value)

    def value_kind(self, value: str) -> str:
        return _KIND_LABELS.get(value, value)
