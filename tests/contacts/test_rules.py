"""One function per rule: the services apply the same checks that the API, the pages,
``POST events/`` and the CSV import apply."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from contacts import rules, services
from contacts.models import Contact, Disclosure
from leadrecord.errors import DomainError, InvalidInput
from leadrecord.ledger import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
GOOD = {
    "key": "budget",
    "value": "about 50k",
    "audience": "all",
    "purpose": "qualification",
    "source": "form",
}


@pytest.mark.parametrize(
    ("change", "attr"),
    [
        ({"key": "Budget!"}, "key"),
        ({"key": "9lives"}, "key"),
        ({"key": "a b"}, "key"),
        ({"audience": "everyone"}, "audience"),
        ({"purpose": "resale"}, "purpose"),
        ({"source": "rumour"}, "source"),
        ({"key": "journey_stage", "value": "bored"}, "value"),
    ],
)
def test_disclosure_record_checks_its_fields_itself(
    contact: Contact, change: dict[str, Any], attr: str
) -> None:
    with pytest.raises(DomainError) as refused:
        services.disclosure_record(contact=contact, actor=SYSTEM, **{**GOOD, **change})
    assert refused.value.attr == attr
    assert isinstance(refused.value, InvalidInput)
    assert not Disclosure.objects.exists()


@pytest.mark.parametrize(
    "email",
    [
        "jo,e@example.com",
        "jo@example..com",
        "jo e@example.com",
        "@example.com",
        "a" * 250 + "@x.io",
    ],
)
def test_email_valid_refuses_what_the_validator_refuses(email: str) -> None:
    assert not rules.email_valid(email)
    with pytest.raises(DomainError):
        services.email_normalize(email)


@pytest.mark.parametrize("domain", ["example.com", "sub.example.co.uk", "example.com."])
def test_domain_valid(domain: str) -> None:
    assert rules.domain_valid(domain)


@pytest.mark.parametrize("domain", ["example", "-x.com", "exa mple.com", "x.c"])
def test_domain_invalid(domain: str) -> None:
    assert not rules.domain_valid(domain)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("x" * 1001, "max_string_length"),
        ("1e3", "invalid"),
        ("+5", "invalid"),
        ("Infinity", "invalid"),
        ("", "invalid"),
        ("1234567890123.456", "max_digits"),
        ("-1.234", "max_decimal_places"),
        ("1234567890123", "max_whole_digits"),
        ("-1", "min_value"),
    ],
)
def test_money_parse_says_what_is_wrong_first(text: str, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.money_parse(text)
    assert (refused.value.code, refused.value.attr) == (code, "amount")


@pytest.mark.parametrize(
    ("text", "value"),
    [("7", "7"), (".5", "0.5"), ("5.", "5"), ("-0", "0"), ("123456789012.99", "123456789012.99")],
)
def test_money_parse_reads_plain_decimals(text: str, value: str) -> None:
    assert rules.money_parse(text) == Decimal(value)
    assert not rules.money_parse(text).is_signed()
