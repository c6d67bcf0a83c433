"""Times given to the API: every write's ``occurred_at`` and ``expires_at`` keep to the
one accepted range (1900-01-01 to 2200-12-31, leadrecord.dates), refused with a 400
naming the field; DRF's own "overflow" is never reached."""

from collections.abc import Callable
from typing import Any

import pytest

from contacts.models import Consent, Contact, Disclosure, Touch
from handoff.models import Deal
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

TOO_EARLY = [
    "1899-12-31T23:59:59.999999Z",
    "1900-01-01T00:30:00+01:00",  # 1899-12-31T23:30Z
    "0001-01-01T00:00:00+01:00",  # no UTC form in Python at all
    "0001-01-01T00:00:00Z",
]
TOO_LATE = [
    "2201-01-01T00:00:00Z",
    "2200-12-31T23:00:00-02:00",  # 2201-01-01T01:00Z
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
]
MESSAGE = "Give a time between 1900-01-01 and 2200-12-31 (UTC)."


def counts() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Consent.objects.count(),
        Disclosure.objects.count(),
        Touch.objects.count(),
        Deal.objects.count(),
        LedgerEntry.objects.count(),
    )


# (path, body) for a write as a manager, given a person on record.
WRITES: dict[str, Callable[[Contact], tuple[str, dict[str, Any]]]] = {
    "contacts": lambda person: ("/api/v1/contacts/", {"email": "grace@example.com"}),
    "consents": lambda person: (
        f"/api/v1/contacts/{person.pk}/consents/",
        {"purpose": "analytics", "granted": True, "source": "web"},
    ),
    "disclosures": lambda person: (
        f"/api/v1/contacts/{person.pk}/disclosures/",
        {
            "key": "budget",
            "value": "50k",
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
        },
    ),
    "touches": lambda person: ("/api/v1/touches/", {"contact": person.pk, "channel": "web"}),
    "campaigns": lambda person: ("/api/v1/campaigns/", {"name": "Spring", "channel": "web"}),
    "deals": lambda person: (
        "/api/v1/deals/",
        {"name": "Acme", "organization": person.organization_id, "amount": "10.00"},
    ),
}


@pytest.fixture
def person() -> Contact:
    return contact_make(email="ada@example.com", organization="acme.example")


@pytest.fixture
def manager(users, api_client_for) -> Any:
    return api_client_for(users[Role.MANAGER])


def refused_on(response: Any, field: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json() == {
        "type": "validation_error",
        "errors": [{"code": "date_out_of_range", "detail": MESSAGE, "attr": field}],
    }


@pytest.mark.parametrize("value", TOO_EARLY)
@pytest.mark.parametrize("write", WRITES)
def test_an_occurred_at_before_1900_is_a_400_naming_it(write, value, person, manager):
    path, body = WRITES[write](person)
    before = counts()
    refused_on(manager.post(path, {**body, "occurred_at": value}, format="json"), "occurred_at")
    assert counts() == before


@pytest.mark.parametrize("value", TOO_LATE)
def test_an_expiry_after_2200_is_a_400_naming_it(value, person, manager):
    path, body = WRITES["disclosures"](person)
    before = counts()
    refused_on(manager.post(path, {**body, "expires_at": value}, format="json"), "expires_at")
    assert counts() == before


def test_the_ends_of_the_range_are_accepted(person, manager):
    path, body = WRITES["disclosures"](person)
    response = manager.post(
        path,
        {
            **body,
            "occurred_at": "1900-01-01T01:00:00+01:00",
            "expires_at": "2200-12-31T23:59:59.999999Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["expires_at"] == "2200-12-31T23:59:59.999999Z"
