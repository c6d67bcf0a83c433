"""The checks on what people's records may hold: one function per rule.

The services apply them before they write; the API's serializers, the pages'
forms, ``events.ingest`` (``POST events/``) and the CSV touch import call the
same functions to tell the caller early, field by field. Each predicate is
plain and cheap (the bulk path calls it for every event); a field that checks
by a regex (so that the OpenAPI schema and the page's input show it) takes the
pattern and the message from here.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from leadrecord.errors import InvalidInput

from .models import (
    EMAIL_MAX_LENGTH,
    JOURNEY_STAGE_KEY,
    Audience,
    Campaign,
    Channel,
    ConsentPurpose,
    DisclosurePurpose,
    DisclosureSource,
    JourneyStage,
    TouchKind,
)

# --- emails ---------------------------------------------------------------------

EMAIL_INVALID = "Enter a valid email address."
_email_validator = EmailValidator()


@functools.lru_cache(maxsize=4096)
def email_valid(email: str) -> bool:
    """Whether this (trimmed) text is an email address, by Django's EmailValidator (as
    the API's and the pages' email fields check). Cached: a batch of events names the
    same people again and again, and the validator costs more than a lookup."""
    if not email or len(email) > EMAIL_MAX_LENGTH:
        return False
    try:
        _email_validator(email)
    except ValidationError:
        return False
    return True


# --- money ----------------------------------------------------------------------

# Plain decimal notation: no exponent, no "+", no NaN or infinity.
_MONEY_TEXT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
MONEY_MAX_TEXT_LENGTH = 1000


def money_parse(text: str) -> Decimal:
    """The non-negative amount this (trimmed) text spells, at most ``MONEY_MAX_DIGITS``
    digits of which ``MONEY_DECIMAL_PLACES`` after the point; unrounded.

    The API's money fields and the bulk events path both parse amounts here, and word a
    refusal each their own way: ``InvalidInput``'s code says what is wrong, in the order
    the API reports it (``max_string_length``, ``invalid``, ``max_digits``,
    ``max_decimal_places``, ``max_whole_digits``, then ``min_value``).
    """
    if len(text) > MONEY_MAX_TEXT_LENGTH:
        raise InvalidInput("max_string_length", "The amount is too long.", attr="amount")
    if _MONEY_TEXT.fullmatch(text) is None:
        raise InvalidInput("invalid", "The amount is not a decimal number.", attr="amount")
    value = Decimal(text)
    places = settings.MONEY_DECIMAL_PLACES
    _, digits, exponent_or_special = value.as_tuple()
    exponent = int(exponent_or_special)  # finite, by the pattern
    if exponent >= 0:
        total, decimals = len(digits) + exponent, 0
    else:
        total, decimals = max(len(digits), -exponent), -exponent
    if total > settings.MONEY_MAX_DIGITS:
        raise InvalidInput("max_digits", "The amount has too many digits.", attr="amount")
    if decimals > places:
        raise InvalidInput("max_decimal_places", "The amount has too many decimals.", attr="amount")
    if total - decimals > settings.MONEY_MAX_DIGITS - places:
        raise InvalidInput("max_whole_digits", "The amount is too large.", attr="amount")
    if value < 0:
        raise InvalidInput("min_value", "The amount is negative.", attr="amount")
    # "-0" is zero.
    return value.copy_abs() if value == 0 else value


# --- organization domains -------------------------------------------------------

DOMAIN_PATTERN = r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\.?$"
DOMAIN_INVALID = "Enter a domain name such as example.com."
_DOMAIN = re.compile(DOMAIN_PATTERN)


def domain_valid(domain: str) -> bool:
    """Whether this is a domain name such as example.com (an organization's)."""
    return _DOMAIN.match(domain) is not None


# --- disclosures ----------------------------------------------------------------

# Also the pattern attribute of the page's input (HTML adds the anchors itself).
DISCLOSURE_KEY_HTML_PATTERN = "[a-z][a-z0-9_]*"
DISCLOSURE_KEY_INVALID = "A key is lower-case letters, digits and underscores, e.g. budget."
DISCLOSURE_KEY_PATTERN = f"^{DISCLOSURE_KEY_HTML_PATTERN}$"
_DISCLOSURE_KEY = re.compile(DISCLOSURE_KEY_PATTERN)


def disclosure_key_valid(key: str) -> bool:
    """Whether this is a disclosure key: lower-case letters, digits and underscores."""
    return _DISCLOSURE_KEY.match(key) is not None


# The enums' values, read once: ``Choices.values`` builds a new list on every read,
# and the bulk path checks every event.
_AUDIENCES = frozenset(Audience.values)
_CONSENT_PURPOSES = frozenset(ConsentPurpose.values)
_DISCLOSURE_PURPOSES = frozenset(DisclosurePurpose.values)
_DISCLOSURE_SOURCES = frozenset(DisclosureSource.values)
_JOURNEY_STAGES = tuple(JourneyStage.values)
_TOUCH_KINDS = frozenset(TouchKind.values)


def _choice_check(value: str, choices: frozenset[str], *, what: str, attr: str) -> None:
    if value not in choices:
        raise InvalidInput("invalid_choice", f"Unknown {what} {value!r}.", attr=attr)


def disclosure_check(
    *,
    key: str,
    value: str,
    audience: str,
    purpose: str,
    source: str,
    expires_at: datetime | None,
    disclosed_at: datetime,
) -> None:
    """A disclosure's rules: its key, a journey stage's value, its audience, purpose and
    source, and an expiry after the disclosure. Raises a domain error naming the field."""
    if not disclosure_key_valid(key):
        raise InvalidInput("invalid", DISCLOSURE_KEY_INVALID, attr="key")
    if key == JOURNEY_STAGE_KEY and value not in _JOURNEY_STAGES:
        raise InvalidInput(
            "invalid_choice",
            f"A journey stage is one of {', '.join(_JOURNEY_STAGES)}.",
            attr="value",
        )
    _choice_check(audience, _AUDIENCES, what="audience", attr="audience")
    _choice_check(purpose, _DISCLOSURE_PURPOSES, what="purpose", attr="purpose")
    _choice_check(source, _DISCLOSURE_SOURCES, what="source", attr="source")
    if expires_at is not None and expires_at <= disclosed_at:
        raise InvalidInput(
            "invalid", "The expiry must come after the disclosure.", attr="expires_at"
        )


# --- consents and touches -------------------------------------------------------


def consent_check(*, purpose: str) -> None:
    _choice_check(purpose, _CONSENT_PURPOSES, what="purpose", attr="purpose")


def campaign_on_channel_check(*, campaign: Campaign, channel: Channel) -> None:
    """A touch's campaign runs on the touch's channel."""
    if campaign.channel_id != channel.pk:
        raise InvalidInput(
            "invalid",
            f"This campaign runs on channel {campaign.channel.key}, not {channel.key}.",
            attr="campaign",
        )


def touch_check(*, channel: Channel, campaign: Campaign | None, kind: str) -> None:
    """A touch's rules: a known kind, and a campaign that runs on the touch's channel."""
    _choice_check(kind, _TOUCH_KINDS, what="kind", attr="kind")
    if campaign is not None:
        campaign_on_channel_check(campaign=campaign, channel=channel)
