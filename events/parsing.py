"""``POST events/``: checking one event and shaping it for the store (``events.ingest``).

Plain Python rather than a serializer per event (one would cost more than the
database work); the domain rules come from ``contacts.rules``, as the services
apply them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from contacts import rules
from contacts.models import (
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    NAME_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    Audience,
    Campaign,
    Channel,
    ConsentPurpose,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    TouchKind,
)
from contacts.services import (
    domain_normalize,
)
from handoff.models import SaleKind
from leadrecord.api_fields import FUTURE_TOLERANCE, MAX_ID
from leadrecord.dates import MOMENT_OUT_OF_RANGE, OUT_OF_RANGE_CODE, moment_in_range
from leadrecord.errors import DomainError, InvalidInput

EVENT_TYPES = ("touch", "consent", "disclosure", "sale")

# Enum members' plain values, computed once: reading ``Choices.values`` builds
# a new list on every access, and this runs for every event.
_TOUCH_KINDS = tuple(str(value) for value in TouchKind.values)
_TOUCH_KIND_OTHER = str(TouchKind.OTHER.value)
_CONSENT_PURPOSES = tuple(str(value) for value in ConsentPurpose.values)
_JOURNEY_STAGES = tuple(str(value) for value in JourneyStage.values)
_AUDIENCES = tuple(str(value) for value in Audience.values)
_DISCLOSURE_PURPOSES = tuple(str(value) for value in DisclosurePurpose.values)
_DISCLOSURE_SOURCES = tuple(str(value) for value in DisclosureSource.values)


@dataclass
class PersonSpec:
    email: str
    email_key: str
    first_name: str = ""
    last_name: str = ""
    organization_name: str = ""
    organization_domain: str = ""


@dataclass
class ParsedEvent:
    index: int
    type: str
    source_system: str
    external_id: str
    occurred_at: datetime
    person: PersonSpec | None
    fields: dict[str, Any]
    contact_id: int | None = None


class Rejected(Exception):
    def __init__(self, attr: str, detail: str, code: str = "invalid") -> None:
        super().__init__(detail)
        self.error: dict[str, Any] = {"code": code, "detail": detail, "attr": attr}


# --- checking one event ---------------------------------------------------------


def _text(
    data: Mapping[str, Any], name: str, *, max_length: int, required: bool, attr: str = ""
) -> str:
    attr = attr or name
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise Rejected(attr, "This field is required.", "required")
        return ""
    if not isinstance(value, str):
        raise Rejected(attr, "Give a string.")
    value = value.strip()
    if required and not value:
        raise Rejected(attr, "This field may not be blank.", "blank")
    if len(value) > max_length:
        raise Rejected(attr, f"Give at most {max_length} characters.", "max_length")
    if "\x00" in value:
        raise Rejected(attr, "Null characters are not allowed.", "null_characters_not_allowed")
    return value


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...], *, required: bool) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise Rejected(name, "This field is required.", "required")
        return ""
    if not isinstance(value, str) or value not in choices:
        raise Rejected(name, f"Choose one of {', '.join(choices)}.", "invalid_choice")
    return value


def _moment(value: Any, attr: str, *, required: bool = True) -> datetime | None:
    if value is None or value == "":
        if required:
            raise Rejected(attr, "This field is required.", "required")
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise Rejected(attr, "Give an ISO-8601 time with a UTC offset.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise Rejected(attr, "Give an ISO-8601 time with a UTC offset.") from error
    if moment.tzinfo is None:
        raise Rejected(attr, "Give the time with a UTC offset.", "naive")
    if not moment_in_range(moment):
        raise Rejected(attr, MOMENT_OUT_OF_RANGE, OUT_OF_RANGE_CODE)
    return moment


def _checked(check: Callable[..., None], **values: Any) -> None:
    """Apply a domain rule (``contacts.rules``, as the services do) to one event."""
    try:
        check(**values)
    except DomainError as refusal:
        raise Rejected(refusal.attr or "non_field_errors", refusal.detail, refusal.code) from None


def _person(data: Any) -> PersonSpec:
    if not isinstance(data, dict):
        raise Rejected("contact", "Give the person as an object with an email.", "required")
    email = _text(data, "email", max_length=EMAIL_MAX_LENGTH, required=True, attr="contact.email")
    if not rules.email_valid(email):
        raise Rejected("contact.email", rules.EMAIL_INVALID)
    first = _text(
        data, "first_name", max_length=NAME_MAX_LENGTH, required=False, attr="contact.first_name"
    )
    last = _text(
        data, "last_name", max_length=NAME_MAX_LENGTH, required=False, attr="contact.last_name"
    )
    organization = data.get("organization")
    name = domain = ""
    if isinstance(organization, str):
        name = _text(
            data,
            "organization",
            max_length=ORGANIZATION_NAME_MAX_LENGTH,
            required=False,
            attr="contact.organization",
        )
    elif isinstance(organization, dict):
        name = _text(
            organization,
            "name",
            max_length=ORGANIZATION_NAME_MAX_LENGTH,
            required=False,
            attr="contact.organization.name",
        )
        domain = _text(
            organization,
            "domain",
            max_length=DOMAIN_MAX_LENGTH,
            required=False,
            attr="contact.organization.domain",
        )
        if domain and not rules.domain_valid(domain):
            raise Rejected("contact.organization.domain", rules.DOMAIN_INVALID)
    elif organization is not None:
        raise Rejected("contact.organization", "Give a name or an object {name, domain}.")
    return PersonSpec(email, email.lower(), first, last, name, domain_normalize(domain))


@dataclass
class Lookups:
    channels: dict[str, Channel]
    campaigns: dict[int, Campaign]


def _touch_fields(data: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
    key = data.get("channel")
    channel = lookups.channels.get(key) if isinstance(key, str) else None
    if channel is None:
        if key is None or key == "":
            raise Rejected("channel", "This field is required.", "required")
        raise Rejected("channel", f"Unknown channel {str(key)[:40]!r}.", "does_not_exist")
    kind = _choice(data, "kind", _TOUCH_KINDS, required=False) or _TOUCH_KIND_OTHER
    campaign = None
    campaign_id = data.get("campaign")
    if campaign_id is not None:
        if (
            isinstance(campaign_id, bool)
            or not isinstance(campaign_id, int)
            or not (0 < campaign_id <= MAX_ID)
        ):
            raise Rejected("campaign", "Give a campaign id.")
        campaign = lookups.campaigns.get(campaign_id)
        if campaign is None:
            raise Rejected("campaign", f"No campaign {campaign_id}.", "does_not_exist")
    _checked(rules.touch_check, channel=channel, campaign=campaign, kind=kind)
    return {"channel": channel, "campaign": campaign, "kind": kind}


def _consent_fields(data: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
    purpose = _choice(data, "purpose", _CONSENT_PURPOSES, required=True)
    _checked(rules.consent_check, purpose=purpose)
    granted = data.get("granted")
    if not isinstance(granted, bool):
        raise Rejected(
            "granted", "Give true or false.", "required" if granted is None else "invalid"
        )
    return {
        "purpose": purpose,
        "granted": granted,
        "source": _text(data, "source", max_length=CONSENT_SOURCE_MAX_LENGTH, required=True),
        "notice_version": _text(
            data, "notice_version", max_length=NOTICE_VERSION_MAX_LENGTH, required=False
        ),
    }


def _disclosure_fields(data: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
    key = _text(data, "key", max_length=DISCLOSURE_KEY_MAX_LENGTH, required=True)
    value = _text(data, "value", max_length=DISCLOSURE_VALUE_MAX_LENGTH, required=True)
    return {
        "key": key,
        "value": value,
        "audience": _choice(data, "audience", _AUDIENCES, required=True),
        "purpose": _choice(data, "purpose", _DISCLOSURE_PURPOSES, required=True),
        "source": _choice(data, "source", _DISCLOSURE_SOURCES, required=True),
        "expires_at_raw": data.get("expires_at"),
    }


_SALE_KINDS = tuple(str(value) for value in SaleKind.values)


def _sale_fields(data: Mapping[str, Any], lookups: Lookups) -> dict[str, Any]:
    """A sale event names its deal by ``deal_external_id``; amounts are decimal strings."""
    deal_external_id = _text(
        data, "deal_external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=True
    )
    kind = _choice(data, "kind", _SALE_KINDS, required=True)
    raw_amount = data.get("amount")
    amount: Decimal | None = None
    if raw_amount is None or raw_amount == "":
        if kind != SaleKind.LOST:
            raise Rejected("amount", f"A {kind} needs an amount.", "required")
    else:
        if isinstance(raw_amount, bool) or not isinstance(raw_amount, str | int | float):
            raise Rejected("amount", 'Give the amount as a decimal string, e.g. "1234.50".')
        try:
            amount = rules.money_parse(str(raw_amount).strip())
        except InvalidInput:
            raise Rejected(
                "amount",
                "Give a non-negative amount with at most 12 digits before the point and 2 after.",
            ) from None
    currency = data.get("currency")
    if currency is not None and currency != settings.LEADRECORD_CURRENCY:
        raise Rejected(
            "currency",
            f"Amounts are in {settings.LEADRECORD_CURRENCY}; other currencies are not accepted "
            "until exchange rates exist.",
            "unsupported_currency",
        )
    return {"deal_external_id": deal_external_id, "kind": kind, "amount": amount}


_FIELDS_BY_TYPE: dict[str, Callable[[Mapping[str, Any], Lookups], dict[str, Any]]] = {
    "touch": _touch_fields,
    "consent": _consent_fields,
    "disclosure": _disclosure_fields,
    "sale": _sale_fields,
}


def event_parse(index: int, data: Any, lookups: Lookups, now: datetime) -> ParsedEvent:
    if not isinstance(data, dict):
        raise Rejected("non_field_errors", "Each event is an object.")
    event_type = data.get("type")
    if event_type not in _FIELDS_BY_TYPE:
        raise Rejected("type", f"Choose one of {', '.join(EVENT_TYPES)}.", "invalid_choice")
    source_system = _text(data, "source_system", max_length=SOURCE_SYSTEM_MAX_LENGTH, required=True)
    external_id = _text(data, "external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=True)
    occurred_at = _moment(data.get("occurred_at"), "occurred_at")
    if occurred_at is None:
        raise Rejected("occurred_at", "This field is required.", "required")
    if occurred_at > now + FUTURE_TOLERANCE:
        raise Rejected("occurred_at", "This time is in the future.", "future")
    person = None if event_type == "sale" else _person(data.get("contact"))
    fields = _FIELDS_BY_TYPE[event_type](data, lookups)
    if "expires_at_raw" in fields:
        expires_at = _moment(fields.pop("expires_at_raw"), "expires_at", required=False)
        fields["expires_at"] = expires_at
        _checked(
            rules.disclosure_check,
            key=fields["key"],
            value=fields["value"],
            audience=fields["audience"],
            purpose=fields["purpose"],
            source=fields["source"],
            expires_at=expires_at,
            disclosed_at=occurred_at,
        )
    return ParsedEvent(index, event_type, source_system, external_id, occurred_at, person, fields)


def external_id_of(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("external_id"), str):
        return data["external_id"][:EXTERNAL_ID_MAX_LENGTH]
    return None


def lookups_for(events: list[Any]) -> Lookups:
    campaign_ids: set[int] = {
        event["campaign"]
        for event in events
        if isinstance(event, dict)
        and isinstance(event.get("campaign"), int)
        and not isinstance(event.get("campaign"), bool)
        and 0 < event["campaign"] <= MAX_ID
    }
    return Lookups(
        channels={channel.key: channel for channel in Channel.objects.filter(active=True)},
        campaigns=(
            {campaign.pk: campaign for campaign in Campaign.objects.filter(pk__in=campaign_ids)}
            if campaign_ids
            else {}
        ),
    )
