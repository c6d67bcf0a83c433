"""Forms for the touch, campaign, channel and import pages: they parse and check input;
the services decide and write.

Times typed into a datetime-local box are read in the reporting time zone
(``settings.TIME_ZONE``), whatever the browser's own zone, so that everyone's
"9:30" means the same moment.
"""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from leadrecord.api_fields import MAX_ID
from leadrecord.dates import validate_moment_in_range
from leadrecord.errors import DomainError

from . import rules, selectors, services, touch_import_csv
from .forms import DATETIME_LOCAL_FORMATS, DateTimeLocalInput
from .models import (
    CAMPAIGN_NAME_MAX_LENGTH,
    CHANNEL_KEY_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    UTM_MAX_LENGTH,
    Campaign,
    Channel,
    Contact,
    ImportMode,
    Team,
    TouchKind,
)

# A person's name, email or company: long enough for any of them, short enough for the query.
CONTACT_SEARCH_MAX_LENGTH = 200


def reporting_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


class ReportingTimeField(forms.DateTimeField):
    """A datetime-local value read in the reporting time zone; a time that does not exist
    there, or exists twice (clocks changing), is refused by Django's own check."""

    widget = DateTimeLocalInput

    default_validators = [validate_moment_in_range]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", DATETIME_LOCAL_FORMATS)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(reporting_zone()):
            return super().to_python(value)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and timezone.is_aware(value):
            return timezone.localtime(value, reporting_zone())
        return value


def _active_channels() -> Any:
    return Channel.objects.filter(active=True).order_by("team", "key")


def _campaign_choices() -> list[tuple[str, Any]]:
    """Campaigns grouped by their channel, so the list itself says which go together."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for campaign in Campaign.objects.filter(channel__active=True).select_related("channel"):
        groups.setdefault(campaign.channel.key, []).append((str(campaign.pk), campaign.name))
    return [("", "No campaign"), *sorted(groups.items())]


# --- logging a touch ---------------------------------------------------------------------


class ContactSearchForm(forms.Form):
    q = forms.CharField(
        label="Find a contact",
        max_length=CONTACT_SEARCH_MAX_LENGTH,
        required=False,
        help_text="Part of a name, email or company.",
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )


class TouchLogForm(forms.Form):
    contact_email = forms.EmailField(
        label="Contact email",
        max_length=EMAIL_MAX_LENGTH,
        help_text="The email of a contact on record; search above to find one.",
        widget=forms.EmailInput(attrs={"list": "contact-emails", "autocomplete": "off"}),
    )
    channel = forms.ModelChoiceField(
        label="Channel",
        queryset=Channel.objects.none(),
        to_field_name="key",
        empty_label="Choose a channel",
    )
    campaign = forms.TypedChoiceField(
        label="Campaign", required=False, coerce=int, empty_value=None
    )
    kind = forms.ChoiceField(label="Kind", choices=[("", "Choose a kind"), *TouchKind.choices])
    occurred_at = ReportingTimeField(
        label="When", required=False, help_text="Empty means now; never in the future."
    )
    # A fresh one on each blank form: sending the same form twice (a double
    # click, a reload) records the touch once.
    # Missing or mangled, it is only a lost safeguard, not an error to show.
    submission = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("submission", uuid.uuid4())
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = _active_channels()  # type: ignore[attr-defined]
        self.fields["campaign"].choices = _campaign_choices()  # type: ignore[attr-defined]
        zone = settings.TIME_ZONE
        when = self.fields["occurred_at"]
        when.help_text = f"{when.help_text} Time zone: {zone}."
        now_there = timezone.localtime(timezone.now(), reporting_zone())
        when.widget.attrs["max"] = now_there.strftime("%Y-%m-%dT%H:%M")

    def clean_contact_email(self) -> Contact:
        email: str = self.cleaned_data["contact_email"]
        try:
            email_key = services.email_normalize(email)
        except DomainError as error:
            raise forms.ValidationError(error.detail, code="invalid") from error
        contact = selectors.contact_find_by_email(email_key)
        if contact is None:
            raise forms.ValidationError(
                "No contact on record has this email: add the contact first.", code="not_found"
            )
        return contact

    def clean_submission(self) -> str:
        try:
            return str(uuid.UUID(self.cleaned_data["submission"]))
        except ValueError:
            return str(uuid.uuid4())

    def clean_campaign(self) -> Campaign | None:
        campaign_id: int | None = self.cleaned_data["campaign"]
        if campaign_id is None:
            return None
        campaign = (
            Campaign.objects.select_related("channel").filter(pk=campaign_id).first()
            if 0 < campaign_id <= MAX_ID
            else None
        )
        if campaign is None:
            raise forms.ValidationError("Choose a campaign from the list.", code="invalid_choice")
        return campaign

    def clean_occurred_at(self) -> datetime | None:
        moment: datetime | None = self.cleaned_data["occurred_at"]
        if moment is not None and moment > timezone.now():
            raise forms.ValidationError("This time is in the future.", code="future")
        return moment

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        campaign: Campaign | None = data.get("campaign")
        channel: Channel | None = data.get("channel")
        if campaign is not None and channel is not None:
            try:
                rules.campaign_on_channel_check(campaign=campaign, channel=channel)
            except DomainError as refusal:
                self.add_error(
                    "campaign", forms.ValidationError(refusal.detail, code="wrong_channel")
                )
        return data

    def service_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "contact": data["contact_email"],
            "channel": data["channel"],
            "campaign": data["campaign"],
            "kind": data["kind"],
            "occurred_at": data["occurred_at"],
            "source_system": TOUCH_FORM_SOURCE_SYSTEM,
            "external_id": data["submission"],
        }


# Touches logged on the page name the form they came from, so that the same
# form sent twice is one touch (the pair is unique).
TOUCH_FORM_SOURCE_SYSTEM = "leadrecord-touch-form"


# --- campaigns and channels --------------------------------------------------------------


class CampaignForm(forms.Form):
    name = forms.CharField(label="Name", max_length=CAMPAIGN_NAME_MAX_LENGTH)
    channel = forms.ModelChoiceField(
        label="Channel",
        queryset=Channel.objects.none(),
        to_field_name="key",
        empty_label="Choose a channel",
    )
    utm_source = forms.CharField(label="utm_source", max_length=UTM_MAX_LENGTH, required=False)
    utm_medium = forms.CharField(label="utm_medium", max_length=UTM_MAX_LENGTH, required=False)
    utm_campaign = forms.CharField(label="utm_campaign", max_length=UTM_MAX_LENGTH, required=False)
    cost = forms.DecimalField(
        label="Cost",
        min_value=0,
        max_digits=settings.MONEY_MAX_DIGITS,
        decimal_places=settings.MONEY_DECIMAL_PLACES,
        initial=0,
        help_text=f"In {settings.LEADRECORD_CURRENCY}, e.g. 1234.50.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = _active_channels()  # type: ignore[attr-defined]

    def service_arguments(self) -> dict[str, Any]:
        return {
            name: self.cleaned_data[name]
            for name in ("name", "channel", "utm_source", "utm_medium", "utm_campaign", "cost")
        }


class ChannelForm(forms.Form):
    key = forms.SlugField(
        label="Key",
        max_length=CHANNEL_KEY_MAX_LENGTH,
        help_text="Lower-case letters, digits, hyphens and underscores, e.g. trade_show.",
    )
    team = forms.ChoiceField(
        label="Team",
        choices=[("", "Choose a team"), *Team.choices],
        help_text="Whose work a touch on this channel is: attribution credits teams.",
    )


# --- importing a CSV file ----------------------------------------------------------------


class TouchImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=(
            f"UTF-8 CSV with the columns {', '.join(touch_import_csv.REQUIRED_COLUMNS)} and "
            f"optionally {', '.join(touch_import_csv.OPTIONAL_COLUMNS)}; at most "
            f"{touch_import_csv.MAX_FILE_BYTES // 1024 // 1024} MB and "
            f"{touch_import_csv.MAX_ROWS:,} rows."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    time_zone = forms.ChoiceField(
        label="Time zone of times without an offset",
        required=False,
        help_text="Times like 2026-05-01 09:30 are read in this zone; times with an offset "
        "(+02:00, Z) keep theirs.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["time_zone"]).choices = [
            ("", "None: every time has its offset"),
            *((name, name) for name in sorted(zoneinfo.available_timezones())),
        ]
        for column in touch_import_csv.KNOWN_COLUMNS:
            self.fields[f"column_{column}"] = forms.CharField(
                label=f"Column for {column}",
                required=False,
                max_length=touch_import_csv.COLUMN_NAME_MAX_LENGTH,
                help_text=(
                    f"The file's column name; blank: a column named {column}, or the "
                    "HubSpot or Salesforce export's."
                ),
            )

    def column_map(self) -> dict[str, str]:
        return {
            column: self.cleaned_data.get(f"column_{column}") or ""
            for column in touch_import_csv.KNOWN_COLUMNS
        }

    def column_fields(self) -> list[forms.BoundField]:
        return [self[f"column_{column}"] for column in touch_import_csv.KNOWN_COLUMNS]

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > touch_import_csv.MAX_FILE_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024 / 1024:.1f} MB; the limit is "
                f"{touch_import_csv.MAX_FILE_BYTES // 1024 // 1024} MB. "
                "Split it into smaller files.",
                code="too_large",
            )
        return upload


class TouchImportStartForm(forms.Form):
    mode = forms.ChoiceField(
        label="How to import",
        choices=[
            (
                ImportMode.ALL_OR_NOTHING,
                "All or nothing: if any row has an error, import no row at all.",
            ),
            (
                ImportMode.VALID_ROWS,
                "Import the valid rows: take every good row and report the others.",
            ),
        ],
        widget=forms.RadioSelect,
    )
