"""Forms for the contact pages: they parse and check input; the services decide and write.

Sizes come from ``contacts.models`` so a form never lets through what the
database or the API would refuse. Choices a person must make on purpose
(audience, purpose, granted or withdrawn) start empty, so nothing is recorded
by default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.utils import timezone

from leadrecord.api_fields import MAX_ID
from leadrecord.dates import validate_moment_in_range
from leadrecord.errors import DomainError

from . import rules, selectors, services
from .apis import ContactFilter
from .models import (
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    Audience,
    ConsentPurpose,
    Contact,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    Organization,
)

UserLike = AbstractBaseUser | AnonymousUser

# Keys people commonly disclose; offered as suggestions, any valid key is accepted.
DISCLOSURE_KEY_SUGGESTIONS = (
    "journey_stage",
    "budget",
    "timeline",
    "team_size",
    "use_case",
    "pain_point",
)
# Reasons are free text on the record; long enough for a paragraph.
REASON_MAX_LENGTH = 1000
# What a browser's datetime-local input sends (seconds only when the step allows them).
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
ERASE_WORD = "ERASE"


def _choices_with_empty(choices: list[tuple[str, str]], label: str) -> list[tuple[str, str]]:
    return [("", label), *choices]


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


def _local_datetime_field(label: str, help_text: str) -> forms.DateTimeField:
    """An optional datetime-local field, read in the current Django time zone."""
    return forms.DateTimeField(
        label=label,
        required=False,
        input_formats=DATETIME_LOCAL_FORMATS,
        widget=DateTimeLocalInput(),
        help_text=help_text,
        validators=[validate_moment_in_range],
    )


class LocalTimesMixin(forms.BaseForm):
    """Names the time zone that datetime-local inputs are read in, beside each such field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        for field in self.fields.values():
            if isinstance(field.widget, DateTimeLocalInput):
                field.help_text = f"{field.help_text} Time zone: {zone}."


# --- the contact list's filters ------------------------------------------------


class ContactListFilter(ContactFilter):
    """The API's contact filters, with labels and empty choices that read well on a page,
    and the page's own: who granted a consent.

    Declared again rather than relabelled in ``__init__``: a filter builds its form field
    once and keeps it, and the API schema's generation builds the parent's fields first,
    so a later relabelling of a copy would not reach the page.
    """

    search = django_filters.CharFilter(
        label="Search",
        method="filter_search",
        max_length=200,
        help_text="Words in name, email, title, organization.",
    )
    organization = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.all(),
        label="Organization",
        empty_label="Any organization",
    )
    stage = django_filters.ChoiceFilter(
        choices=JourneyStage.choices,
        field_name="journey_stage",
        label="Stage",
        empty_label="Any stage",
        help_text="The latest journey stage the caller may see.",
    )
    # The API's TypedChoiceFilter reads "true" and "false"; say them in words.
    qualified = django_filters.TypedChoiceFilter(
        choices=[("", "Any"), ("true", "Yes"), ("false", "No")],
        coerce=lambda value: value == "true",
        label="Qualified",
    )
    consent = django_filters.ChoiceFilter(
        choices=ConsentPurpose.choices,
        label="Consent granted",
        empty_label="Any",
        method="filter_consent",
    )

    def filter_consent(
        self, queryset: QuerySet[Contact], name: str, value: str
    ) -> QuerySet[Contact]:
        return selectors.contacts_with_consent(queryset, value)


# --- contacts ------------------------------------------------------------------


class ContactCreateForm(forms.Form):
    email = forms.EmailField(label="Email", max_length=EMAIL_MAX_LENGTH)
    first_name = forms.CharField(label="First name", max_length=NAME_MAX_LENGTH, required=False)
    last_name = forms.CharField(label="Last name", max_length=NAME_MAX_LENGTH, required=False)
    title = forms.CharField(label="Title", max_length=TITLE_MAX_LENGTH, required=False)
    organization_name = forms.CharField(
        label="Organization name", max_length=ORGANIZATION_NAME_MAX_LENGTH, required=False
    )
    organization_domain = forms.RegexField(
        rules.DOMAIN_PATTERN,
        label="Organization domain",
        max_length=DOMAIN_MAX_LENGTH,
        required=False,
        help_text="Such as example.com. People with the same domain share one organization.",
        error_messages={"invalid": rules.DOMAIN_INVALID},
    )

    def organization_input(self) -> services.OrganizationInput | None:
        name = self.cleaned_data["organization_name"]
        domain = self.cleaned_data["organization_domain"]
        if not name and not domain:
            return None
        return services.OrganizationInput(name=name, domain=domain)


class ConsentForm(LocalTimesMixin, forms.Form):
    purpose = forms.ChoiceField(
        label="Purpose", choices=_choices_with_empty(ConsentPurpose.choices, "Choose a purpose")
    )
    granted = forms.ChoiceField(
        label="The person",
        choices=[("granted", "Granted"), ("withdrawn", "Withdrawn")],
        widget=forms.RadioSelect,
    )
    source = forms.CharField(
        label="Source",
        max_length=CONSENT_SOURCE_MAX_LENGTH,
        help_text="Where the person said so, e.g. the signup form on example.com/trial.",
    )
    notice_version = forms.CharField(
        label="Notice version",
        max_length=NOTICE_VERSION_MAX_LENGTH,
        required=False,
        help_text="The version of the privacy notice the person was shown.",
    )
    occurred_at = _local_datetime_field("When", "Optional: empty means now; never in the future.")

    def clean_occurred_at(self) -> datetime | None:
        moment: datetime | None = self.cleaned_data["occurred_at"]
        if moment is not None and moment > timezone.now():
            raise forms.ValidationError("This time is in the future.", code="future")
        return moment

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "purpose": data["purpose"],
            "granted": data["granted"] == "granted",
            "source": data["source"],
            "notice_version": data["notice_version"],
            "occurred_at": data["occurred_at"],
        }


class DisclosureForm(LocalTimesMixin, forms.Form):
    key = forms.RegexField(
        rules.DISCLOSURE_KEY_PATTERN,
        label="What",
        max_length=DISCLOSURE_KEY_MAX_LENGTH,
        help_text="A key: lower-case letters, digits and underscores, e.g. budget.",
        error_messages={"invalid": rules.DISCLOSURE_KEY_INVALID},
        widget=forms.TextInput(
            attrs={
                "list": "disclosure-keys",
                "autocomplete": "off",
                "pattern": rules.DISCLOSURE_KEY_HTML_PATTERN,
                "spellcheck": "false",
            }
        ),
    )
    value = forms.CharField(
        label="Value",
        max_length=DISCLOSURE_VALUE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For journey_stage: learning, comparing or ready_to_talk.",
    )
    audience = forms.ChoiceField(
        label="Shared with", choices=Audience.choices, widget=forms.RadioSelect
    )
    purpose = forms.ChoiceField(
        label="Purpose",
        choices=_choices_with_empty(DisclosurePurpose.choices, "Choose a purpose"),
    )
    source = forms.ChoiceField(
        label="Source", choices=_choices_with_empty(DisclosureSource.choices, "Choose a source")
    )
    expires_at = _local_datetime_field("Expires", "Optional: empty means it does not expire.")

    def service_arguments(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name]
            for name in ("key", "value", "audience", "purpose", "source", "expires_at")
        }


# --- merge and erasure -------------------------------------------------------------


class ContactMergeForm(forms.Form):
    """Which contact to merge into ``keep``: found by id or email among those the user sees."""

    merge = forms.CharField(
        label="Contact to merge into this one",
        max_length=EMAIL_MAX_LENGTH,
        help_text="Its id (the number in its address) or its email.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional; kept on the record.",
    )
    # Set by the confirmation page: without it the page only shows what would happen.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, keep: Contact, user: UserLike, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep = keep
        self.user = user

    def clean_merge(self) -> Contact:
        text = self.cleaned_data["merge"].strip()
        found: Contact | None = None
        if text.isdigit():
            if int(text) <= MAX_ID:
                found = selectors.contacts_for(self.user).filter(pk=int(text)).first()
        else:
            try:
                email_key = services.email_normalize(text)
            except DomainError as error:
                raise forms.ValidationError(
                    "Enter a contact's id or email address.", code="invalid"
                ) from error
            found = selectors.contact_find_by_email(email_key)
        if found is None:
            raise forms.ValidationError("No contact on record has this id or email.", "not_found")
        if found.pk == self.keep.pk:
            raise forms.ValidationError(
                "A contact cannot be merged into itself.", code="merge_into_self"
            )
        return found


class ContactEraseForm(forms.Form):
    confirmation = forms.CharField(label="Confirmation", max_length=EMAIL_MAX_LENGTH)
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Optional, e.g. the request's reference; kept on the record.",
    )

    def __init__(self, *args: Any, contact: Contact, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = contact.email or ERASE_WORD
        what = "the contact's email" if contact.email else f"the word {ERASE_WORD}"
        self.fields["confirmation"].help_text = f"Type {what} to confirm."
        self.fields["confirmation"].widget.attrs["autocomplete"] = "off"

    def clean_confirmation(self) -> str:
        typed: str = self.cleaned_data["confirmation"]
        if typed.strip().casefold() != self.expected.strip().casefold():
            raise forms.ValidationError("This does not match; nothing was erased.", code="mismatch")
        return typed


# --- moving a person to another organization -------------------------------------------


class OrganizationMoveForm(forms.Form):
    organization = forms.ModelChoiceField(
        label="Move to",
        queryset=selectors.organizations_all(),
        required=False,
        empty_label="No organization",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        required=False,
        help_text="Kept on the record, e.g. “Changed jobs in March”.",
    )
