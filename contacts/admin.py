"""The admin shows people and what they shared, read-only.

Writes go through ``contacts.services`` so that the ledger records them; the
admin can neither add, change nor delete. Disclosures are read through
``disclosures_visible_to`` like everywhere else, so the admin follows roles,
not staff or superuser flags: a superuser without a role sees no disclosure.
``ContactKey`` is not registered: keys are never shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from .models import Consent, Contact, Disclosure, Organization
from .selectors import contacts_living, disclosures_visible_to


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    list_display = ["name", "domain", "created_at"]
    search_fields = ["name", "domain"]


class ConsentInline(ReadOnlyInline):
    model = Consent
    fields = ["purpose", "granted", "source", "notice_version", "occurred_at", "recorded_at"]


class DisclosureInline(ReadOnlyInline):
    model = Disclosure
    fields = [
        "key",
        "value",
        "audience",
        "purpose",
        "source",
        "disclosed_at",
        "expires_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Disclosure]:
        return disclosures_visible_to(request.user, super().get_queryset(request))


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "email", "title", "organization", "score", "qualified", "created_at"]
    list_filter = ["qualified"]
    list_select_related = ["organization"]
    search_fields = [
        "first_name",
        "last_name",
        "email",
        "organization__name",
        "organization__domain",
    ]
    fields = [
        "email",
        "first_name",
        "last_name",
        "title",
        "organization",
        "score",
        "qualified",
        "created_at",
    ]
    inlines = [ConsentInline, DisclosureInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contact]:
        # Erased people have nothing to show and merged ones live on in the
        # contact they were merged into.
        return contacts_living()


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["contact", "purpose", "granted", "source", "notice_version", "occurred_at"]
    list_filter = ["purpose", "granted", "notice_version"]
    list_select_related = ["contact"]
    search_fields = ["contact__email", "contact__first_name", "contact__last_name", "source"]
    fields = [
        "contact",
        "purpose",
        "granted",
        "source",
        "notice_version",
        "occurred_at",
        "recorded_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Consent]:
        return super().get_queryset(request).filter(contact__in=contacts_living())


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdmin):
    list_display = [
        "contact",
        "key",
        "value",
        "audience",
        "purpose",
        "source",
        "disclosed_at",
        "expires_at",
    ]
    list_filter = ["audience", "source", "purpose"]
    list_select_related = ["contact"]
    # Searched by who and what kind, never by the disclosed value (as in
    # ``contacts_search``).
    search_fields = ["key", "contact__email", "contact__first_name", "contact__last_name"]
    fields = [
        "contact",
        "key",
        "value",
        "audience",
        "purpose",
        "source",
        "disclosed_at",
        "recorded_at",
        "expires_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Disclosure]:
        return disclosures_visible_to(request.user, super().get_queryset(request))
