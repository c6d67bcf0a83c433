"""The contact and deal lists: their filters and tables.

The contact list lives here, above the contacts app, because two of its filters
(owner, can hand off) read handoffs; everything the list shows of a person comes
from ``contacts.selectors.contacts_for``, which applies the reader's disclosure
visibility, so the page and its CSV show the same, permitted, values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
import django_tables2 as tables
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html

from contacts.forms import ContactListFilter
from contacts.models import Contact, JourneyStage, Organization
from leadrecord.filters import day_filter
from leadrecord.tables import TIME_FORMAT, ListTable

from . import selectors
from .models import Deal, DealSource, DealState

_STAGE_LABELS = dict(JourneyStage.choices)
_SOURCE_LABELS = dict(DealSource.choices)
YES_NO = [("true", "Yes"), ("false", "No")]


def _yes(value: str) -> bool:
    return value == "true"


# --- contacts ------------------------------------------------------------------------


class ContactPageFilter(ContactListFilter):
    """The contact list's filters: the API's, consent, and the two that read handoffs."""

    owner = django_filters.ModelChoiceFilter(
        queryset=selectors.sales_users(),
        label="Owner",
        empty_label="Anyone",
        method="filter_owner",
    )
    # A choice rather than BooleanFilter, which quietly ignores a value it cannot read.
    can_hand_off = django_filters.TypedChoiceFilter(
        choices=[("", "Any"), *YES_NO],
        coerce=_yes,
        label="Can hand off",
        method="filter_can_hand_off",
    )

    def filter_owner(self, queryset: QuerySet[Contact], name: str, value: Any) -> QuerySet[Contact]:
        return selectors.contacts_owned_by(self.request.user, queryset, value.pk)

    def filter_can_hand_off(
        self, queryset: QuerySet[Contact], name: str, value: bool
    ) -> QuerySet[Contact]:
        return selectors.contacts_can_hand_off(self.request.user, queryset, can=value)


class ContactTable(ListTable):
    caption = "Contacts"
    # Rendered for every row (``empty_values=()``): a person without a last name is still
    # named, by first name or email.
    name = tables.Column(
        verbose_name="Name",
        accessor="last_name",
        order_by=("last_name", "first_name", "email"),
        empty_values=(),
    )
    email = tables.Column(verbose_name="Email")
    organization = tables.Column(
        verbose_name="Organization", accessor="organization__name", default="—"
    )
    title = tables.Column(verbose_name="Title", default="—")
    journey_stage = tables.Column(verbose_name="Stage", default="—")
    score = tables.Column(verbose_name="Score")
    qualified = tables.BooleanColumn(verbose_name="Qualified", yesno="Yes,No")
    created_at = tables.DateTimeColumn(verbose_name="Added", format=TIME_FORMAT)

    class Meta(ListTable.Meta):
        model = Contact
        fields = ()
        sequence = (
            "name",
            "email",
            "organization",
            "title",
            "journey_stage",
            "score",
            "qualified",
            "created_at",
        )
        order_by = ("-created_at",)
        empty_text = "No contacts match these filters."

    def render_name(self, record: Contact) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("contact", args=[record.pk]), record.display_name
        )

    def value_name(self, record: Contact) -> str:
        return record.display_name

    def render_journey_stage(self, value: str) -> str:
        return _STAGE_LABELS.get(value, value)

    def value_journey_stage(self, value: str) -> str:
        return _STAGE_LABELS.get(value, value)


# --- deals -----------------------------------------------------------------------------


class DealFilter(django_filters.FilterSet):
    organization = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.all(), label="Organization", empty_label="Any organization"
    )
    owner = django_filters.ModelChoiceFilter(
        queryset=selectors.sales_users(), label="Owner", empty_label="Anyone"
    )
    source = django_filters.ChoiceFilter(
        field_name="effective_source",
        choices=DealSource.choices,
        label="Source",
        empty_label="Any source",
    )
    state = django_filters.ChoiceFilter(
        choices=DealState.choices, label="State", empty_label="Any state"
    )
    created_from = day_filter("occurred_at", "gte", "Created from")
    created_to = day_filter("occurred_at", "lte", "Created to")

    class Meta:
        model = Deal
        fields: list[str] = []


class DealTable(ListTable):
    caption = "Deals"
    name = tables.Column(verbose_name="Deal")
    organization = tables.Column(verbose_name="Organization", accessor="organization__name")
    amount = tables.Column(verbose_name="Amount", attrs={"td": {"class": "number"}})
    owner = tables.Column(verbose_name="Owner", accessor="owner__username", default="—")
    state = tables.Column(verbose_name="State")
    effective_source = tables.Column(verbose_name="Source")
    influenced = tables.BooleanColumn(verbose_name="Influenced", yesno="Yes,No")
    occurred_at = tables.DateTimeColumn(verbose_name="Created", format=TIME_FORMAT)

    class Meta(ListTable.Meta):
        model = Deal
        fields = ()
        sequence = (
            "name",
            "organization",
            "amount",
            "owner",
            "state",
            "effective_source",
            "influenced",
            "occurred_at",
        )
        order_by = ("-occurred_at",)
        empty_text = "No deals match these filters."

    def render_name(self, record: Deal) -> str:
        return format_html('<a href="{}">{}</a>', reverse("deal", args=[record.pk]), record.name)

    def value_name(self, record: Deal) -> str:
        return record.name

    def render_state(self, record: Deal) -> str:
        return record.get_state_display()

    def value_state(self, record: Deal) -> str:
        return record.get_state_display()

    def render_effective_source(self, value: str) -> str:
        return _SOURCE_LABELS.get(value, value)

    def value_effective_source(self, value: str) -> str:
        return _SOURCE_LABELS.get(value, value)


# --- organizations -----------------------------------------------------------------------


class OrganizationFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search",
        label="Name or domain",
        max_length=200,
    )

    class Meta:
        model = Organization
        fields: list[str] = []

    def filter_search(
        self, queryset: QuerySet[Organization], name: str, value: str
    ) -> QuerySet[Organization]:
        return queryset.filter(
            Q(name__icontains=value.strip()) | Q(domain__icontains=value.strip())
        )


class OrganizationTable(ListTable):
    caption = "Organizations"
    name = tables.Column(verbose_name="Organization")
    domain = tables.Column(verbose_name="Domain", default="—")
    people_count = tables.Column(verbose_name="People", attrs={"td": {"class": "number"}})
    deal_count = tables.Column(verbose_name="Deals", attrs={"td": {"class": "number"}})
    revenue = tables.Column(verbose_name="Revenue", attrs={"td": {"class": "number"}})

    class Meta(ListTable.Meta):
        model = Organization
        fields = ()
        sequence = ("name", "domain", "people_count", "deal_count", "revenue")
        order_by = ("name",)
        empty_text = "No organizations match."

    def render_name(self, record: Organization) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("organization", args=[record.pk]), record.name
        )

    def value_name(self, record: Organization) -> str:
        return record.name

    def render_revenue(self, value: Decimal) -> str:
        # Two places on every database (SQLite may answer a whole number).
        return f"{Decimal(value):.2f}"

    def value_revenue(self, value: Decimal) -> str:
        return f"{Decimal(value):.2f}"
