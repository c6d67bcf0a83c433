"""Forms for the handoff pages: they parse and check input; the services decide and write.

Sizes and ranges are the API's (``handoff.apis``), so a page never lets
through what the API would refuse, and the other way round.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from contacts import selectors as contact_selectors
from contacts import services as contact_services
from contacts.forms import LocalTimesMixin, _choices_with_empty, _local_datetime_field
from contacts.models import (
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    Contact,
    Organization,
)
from leadrecord.errors import DomainError

from . import selectors, services
from .apis import MAX_BUYING_GROUP
from .models import (
    DEAL_NAME_MAX_LENGTH,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_SOURCING_WINDOW_DAYS,
    EXTERNAL_ID_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    PERIOD_MAX_LENGTH,
    REASON_MAX_LENGTH,
    RULESET_NAME_MAX_LENGTH,
    BuyingRole,
    DealSource,
    RejectReason,
    Ruleset,
    SaleKind,
)

# The API's ranges for a ruleset's numbers (handoff.apis.RulesetInputSerializer).
MQL_THRESHOLD_MAX = 1_000_000
SLA_HOURS_MAX = 24 * 365
WINDOW_DAYS_MAX = 3650
# Enough for services.MAX_POINT_RULES lines of a long rule and its points.
POINTS_TEXT_MAX_LENGTH = 20_000
# Rows for buying-group members a new deal form shows; a bound form takes as many as were sent,
# up to the API's limit on a buying group.
MEMBER_ROWS_SHOWN = 5
_MEMBER_FIELD = re.compile(r"^member_(?:email|role)_(\d+)$")
_POINT_LINE = re.compile(r"^\s*(?P<key>[^=\s]+)\s*=\s*(?P<value>[+-]?\d+)\s*$")


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.get_username())


def _money_field(label: str, *, required: bool = True, help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        min_value=Decimal("0"),
        max_digits=settings.MONEY_MAX_DIGITS,
        decimal_places=settings.MONEY_DECIMAL_PLACES,
        help_text=help_text or f"In {settings.LEADRECORD_CURRENCY}, e.g. 12500.00.",
        error_messages={"min_value": "The amount cannot be negative."},
    )


def _not_in_future(moment: datetime | None) -> datetime | None:
    if moment is not None and moment > timezone.now():
        raise forms.ValidationError("This time is in the future.", code="future")
    return moment


# --- handoffs ----------------------------------------------------------------


class HandoffCreateForm(forms.Form):
    note = forms.CharField(
        label="Note for sales",
        max_length=NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What sales should know: what the person asked for, what they care about.",
    )
    assigned_to = UserChoiceField(
        label="For",
        queryset=User.objects.none(),
        required=False,
        empty_label="Anyone in sales",
        help_text="Optional: a sales rep this person should go to.",
    )

    confirm_unqualified = forms.BooleanField(
        label="Hand them off although they are not qualified",
        required=False,
        help_text="They said yes to sales; their score is below the ruleset's threshold.",
    )

    def __init__(self, *args: Any, unqualified: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = selectors.sales_reps()  # type: ignore[attr-defined]
        self.unqualified = unqualified
        if not unqualified:
            del self.fields["confirm_unqualified"]

    def clean_confirm_unqualified(self) -> bool:
        confirmed = bool(self.cleaned_data.get("confirm_unqualified"))
        if self.unqualified and not confirmed:
            raise forms.ValidationError(
                "This person is not qualified: tick the box to hand them off anyway."
            )
        return confirmed


class HandoffRejectForm(forms.Form):
    reason = forms.ChoiceField(
        label="Reason", choices=_choices_with_empty(RejectReason.choices, "Choose a reason")
    )
    note = forms.CharField(
        label="Note",
        max_length=NOTE_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What marketing should know; required when the reason is Other.",
    )


# --- deals -------------------------------------------------------------------


class DealCreateForm(forms.Form):
    """A deal with its buying group: rows of a member's email and role."""

    name = forms.CharField(label="Deal name", max_length=DEAL_NAME_MAX_LENGTH)
    organization = forms.CharField(
        label="Organization",
        max_length=max(ORGANIZATION_NAME_MAX_LENGTH, DOMAIN_MAX_LENGTH),
        help_text="Its domain, such as example.com, or its name as on record.",
    )
    amount = _money_field("Amount")
    owner = UserChoiceField(
        label="Owner", queryset=User.objects.none(), required=False, empty_label="No owner yet"
    )
    external_id = forms.CharField(
        label="External id",
        max_length=EXTERNAL_ID_MAX_LENGTH,
        required=False,
        help_text="Optional: the deal's id in your CRM; a known one leads to that deal.",
    )
    confirm_another = forms.BooleanField(
        label="Create another deal for this person",
        required=False,
        help_text="They already have a deal since the handoff; tick only for a second one.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = selectors.sales_users()  # type: ignore[attr-defined]
        for row in range(self._member_rows()):
            self.fields[f"member_email_{row}"] = forms.EmailField(
                label=f"Member {row + 1} email", max_length=EMAIL_MAX_LENGTH, required=False
            )
            self.fields[f"member_role_{row}"] = forms.ChoiceField(
                label=f"Member {row + 1} role",
                choices=BuyingRole.choices,
                initial=BuyingRole.OTHER,
                required=False,
            )

    def _member_rows(self) -> int:
        sent = [
            int(match.group(1))
            for name in (self.data or {})
            if (match := _MEMBER_FIELD.match(name)) and len(match.group(1)) <= 3
        ]
        highest = max(sent, default=-1) + 1
        return min(max(highest, MEMBER_ROWS_SHOWN), MAX_BUYING_GROUP)

    def member_rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        """The (email, role) fields of each row, for the template."""
        rows = []
        for row in range(self._member_rows()):
            rows.append((self[f"member_email_{row}"], self[f"member_role_{row}"]))
        return rows

    def clean_organization(self) -> Organization:
        text: str = self.cleaned_data["organization"]
        found = selectors.organizations_named(text)
        if not found:
            raise forms.ValidationError(
                "No organization on record has this domain or name.", code="does_not_exist"
            )
        if len(found) > 1:
            raise forms.ValidationError(
                "Several organizations have this name; give the domain instead.",
                code="ambiguous",
            )
        return found[0]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.is_bound:
            sent = {m.group(1) for name in self.data if (m := _MEMBER_FIELD.match(name))}
            if any(int(row) >= MAX_BUYING_GROUP for row in sent):
                raise forms.ValidationError(
                    f"A buying group has at most {MAX_BUYING_GROUP} people.", code="too_many"
                )
        members: list[services.Member] = []
        seen: dict[int, str] = {}
        for row in range(self._member_rows()):
            email = data.get(f"member_email_{row}")
            if not email:
                continue
            name = f"member_email_{row}"
            contact = _contact_by_email(email)
            if contact is None:
                self.add_error(name, "No contact on record has this email.")
                continue
            if contact.pk in seen:
                self.add_error(name, f"This person is already in the group ({seen[contact.pk]}).")
                continue
            seen[contact.pk] = email
            role = data.get(f"member_role_{row}") or BuyingRole.OTHER
            members.append(services.Member(contact, role))
        data["members"] = members
        return data


def _contact_by_email(email: str) -> Contact | None:
    try:
        key = contact_services.email_normalize(email)
    except DomainError:
        return None
    return contact_selectors.contact_find_by_email(key)


class SaleEventForm(LocalTimesMixin, forms.Form):
    kind = forms.ChoiceField(
        label="What happened", choices=_choices_with_empty(SaleKind.choices, "Choose an event")
    )
    amount = _money_field(
        "Amount",
        required=False,
        help_text=f"In {settings.LEADRECORD_CURRENCY}; required for all but lost.",
    )
    occurred_at = _local_datetime_field("When", "Optional: empty means now; never in the future.")

    def clean_occurred_at(self) -> datetime | None:
        return _not_in_future(self.cleaned_data["occurred_at"])


class SourceOverrideForm(forms.Form):
    source = forms.ChoiceField(
        label="Source", choices=_choices_with_empty(DealSource.choices, "Choose a source")
    )
    reason = forms.CharField(
        label="Reason",
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required, and kept on the record beside the derived source.",
    )


# --- rulesets and targets ----------------------------------------------------------


def points_as_text(points: dict[str, int]) -> str:
    return "\n".join(f"{key} = {value}" for key, value in sorted(points.items()))


class RulesetForm(forms.Form):
    name = forms.CharField(label="Name", max_length=RULESET_NAME_MAX_LENGTH)
    points = forms.CharField(
        label="Points",
        max_length=POINTS_TEXT_MAX_LENGTH,
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text="One rule a line: channel:webinar = 10, kind:form = 5, disclosure:budget = 15. "
        "Lines starting with # are ignored.",
    )
    mql_threshold = forms.IntegerField(
        label="MQL threshold", min_value=1, max_value=MQL_THRESHOLD_MAX
    )
    sla_hours = forms.IntegerField(label="Sales SLA (hours)", min_value=1, max_value=SLA_HOURS_MAX)
    sourcing_window_days = forms.IntegerField(
        label="Sourcing window (days)",
        min_value=1,
        max_value=WINDOW_DAYS_MAX,
        initial=DEFAULT_SOURCING_WINDOW_DAYS,
    )
    lookback_days = forms.IntegerField(
        label="Attribution lookback (days)",
        min_value=1,
        max_value=WINDOW_DAYS_MAX,
        initial=DEFAULT_LOOKBACK_DAYS,
    )
    auto_handoff = forms.BooleanField(
        label="Hand off qualified people automatically (when they said yes)", required=False
    )

    @classmethod
    def initial_from(cls, ruleset: Ruleset) -> dict[str, Any]:
        return {
            "name": ruleset.name,
            "points": points_as_text(ruleset.points),
            "mql_threshold": ruleset.mql_threshold,
            "sla_hours": ruleset.sla_hours,
            "sourcing_window_days": ruleset.sourcing_window_days,
            "lookback_days": ruleset.lookback_days,
            "auto_handoff": ruleset.auto_handoff,
        }

    def clean_points(self) -> dict[str, int]:
        points: dict[str, int] = {}
        for number, line in enumerate(self.cleaned_data["points"].splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _POINT_LINE.match(line)
            if match is None:
                raise forms.ValidationError(
                    f"Line {number} is not a rule = whole number, e.g. channel:webinar = 10.",
                    code="invalid",
                )
            key = match.group("key")
            if key in points:
                raise forms.ValidationError(
                    f"Line {number}: {key} is given twice.", code="duplicate"
                )
            points[key] = int(match.group("value"))
        try:
            return services.points_validate(points)
        except DomainError as violation:
            raise forms.ValidationError(violation.detail, code=violation.code) from violation

    def service_arguments(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in services.RULESET_FIELDS}


class TargetForm(forms.Form):
    period = forms.RegexField(
        r"^\d{4}-Q[1-4]$",
        label="Quarter",
        max_length=PERIOD_MAX_LENGTH,
        help_text="Such as 2026-Q4.",
        error_messages={"invalid": "A period is a quarter like 2026-Q3."},
    )
    # People type a percentage (45 for 45 %); the service and the API keep a share (0.45).
    marketing_pipeline_share = forms.DecimalField(
        label="Marketing's share of pipeline (%)",
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        max_digits=5,
        decimal_places=2,
        help_text="A percentage from 0 to 100: 45 means marketing sources 45 % of pipeline.",
        error_messages={
            "invalid": "Give a percentage from 0 to 100, such as 45.",
            "min_value": "Give a percentage from 0 to 100, such as 45.",
            "max_value": "Give a percentage from 0 to 100, such as 45.",
            "max_digits": "Give a percentage from 0 to 100, such as 45.5.",
            "max_decimal_places": "Give a percentage with at most two decimals, such as 45.5.",
            "max_whole_digits": "Give a percentage from 0 to 100, such as 45.",
        },
    )

    def share(self) -> Decimal:
        """The share the service takes: the percentage typed, over 100."""
        return self.cleaned_data["marketing_pipeline_share"] / 100
