"""Dates and times outside 1900-01-01..2200-12-31 on the contact paths that are not DRF
serializers: ``POST events/`` (per event, naming the field), the CSV touch import (per
row and field) and the page forms (a field error); none of them a 5xx or a write."""

from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse

from contacts import touch_import
from contacts.models import Consent, Contact, Disclosure, Touch
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

MESSAGE = "Give a time between 1900-01-01 and 2200-12-31 (UTC)."


def counts() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Consent.objects.count(),
        Disclosure.objects.count(),
        Touch.objects.count(),
        LedgerEntry.objects.count(),
    )


# --- POST events/ ------------------------------------------------------------------------


def touch(external_id: str, **changes: Any) -> dict[str, Any]:
    data = {
        "type": "touch",
        "source_system": "crm",
        "external_id": external_id,
        "occurred_at": "2026-01-15T09:30:00Z",
        "contact": {"email": "ada@example.com"},
        "channel": "web",
        "kind": "visit",
    }
    data.update(changes)
    return data


def disclosure(external_id: str, **changes: Any) -> dict[str, Any]:
    return touch(
        external_id,
        type="disclosure",
        key="budget",
        value="50k",
        audience="all",
        purpose="qualification",
        source="form",
        **changes,
    )


@pytest.fixture
def integration(users, api_client_for) -> Any:
    return api_client_for(users[Role.INTEGRATION])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        # No UTC form in Python: an OverflowError (a 500) before.
        (touch("early", occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at"),
        (touch("early", occurred_at="1899-12-31T23:59:59Z"), "occurred_at"),
        # Stored as year 10000 on PostgreSQL before, which nothing could read back.
        (disclosure("late", expires_at="9999-12-31T23:59:59-14:00"), "expires_at"),
        (disclosure("late", expires_at="2201-01-01T00:00:00Z"), "expires_at"),
    ],
)
def test_an_event_outside_the_range_is_rejected_naming_the_field(event, field, integration):
    before = counts()
    response = integration.post(
        "/api/v1/events/", {"events": [event, touch("fine")]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert body["results"][0] == {
        "external_id": event["external_id"],
        "status": "rejected",
        "id": None,
        "errors": [{"code": "date_out_of_range", "detail": MESSAGE, "attr": field}],
    }
    # Only the good event (and its person) was written.
    assert Touch.objects.count() == before[3] + 1
    assert Disclosure.objects.count() == before[2]


def test_events_at_the_ends_of_the_range_are_stored(integration):
    response = integration.post(
        "/api/v1/events/",
        {
            "events": [
                disclosure(
                    "edges",
                    occurred_at="1900-01-01T00:00:00Z",
                    expires_at="2200-12-31T23:59:59.999999Z",
                )
            ]
        },
        format="json",
    )
    assert response.json()["created"] == 1, response.content
    stored = Disclosure.objects.get()
    assert stored.expires_at is not None
    assert (stored.disclosed_at.year, stored.expires_at.year) == (1900, 2200)


# --- the CSV touch import ----------------------------------------------------------------

HEADER = "email,channel,campaign,kind,occurred_at,external_id\n"


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "1899-12-31T23:59:59Z", "1900-01-01T00:30:00+01:00"]
)
def test_an_import_row_outside_the_range_is_refused_on_its_cell(when):
    raw = f"{HEADER}ada@example.com,web,,visit,{when},\n".encode()
    parsed = touch_import.csv_read(touch_import.csv_text(raw))
    [row] = touch_import.rows_check(parsed.rows, sha256="f" * 64)
    assert row.event is None
    assert [(error.row, error.field, error.message) for error in row.errors] == [
        (2, "occurred_at", MESSAGE)
    ]


# --- the page forms ----------------------------------------------------------------------


@pytest.fixture
def person() -> Contact:
    return contact_make(email="ada@example.com")


def field_error(response: Any, field: str) -> None:
    assert response.status_code == 400
    page = response.content.decode()
    assert f'id="id_{field}_error"' in page
    assert MESSAGE in page


@pytest.mark.parametrize("when", ["1899-12-31T23:59", "0001-01-01T00:00"])
@override_settings(TIME_ZONE="Europe/Berlin")
def test_the_consent_form_refuses_a_time_before_1900(when, users, client, person):
    client.force_login(users[Role.MARKETER])
    before = counts()
    response = client.post(
        reverse("consent-new", args=[person.pk]),
        {"purpose": "analytics", "granted": "granted", "source": "web", "occurred_at": when},
    )
    field_error(response, "occurred_at")
    assert counts() == before


@pytest.mark.parametrize("when", ["2201-01-01T00:00", "9999-12-31T23:59"])
@override_settings(TIME_ZONE="America/New_York")
def test_the_disclosure_form_refuses_an_expiry_after_2200(when, users, client, person):
    client.force_login(users[Role.MARKETER])
    before = counts()
    response = client.post(
        reverse("disclosure-new", args=[person.pk]),
        {
            "key": "budget",
            "value": "50k",
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
            "expires_at": when,
        },
    )
    field_error(response, "expires_at")
    assert counts() == before


@pytest.mark.parametrize("when", ["1850-01-01T00:00", "0001-01-01T00:00"])
@override_settings(TIME_ZONE="Asia/Tokyo")
def test_the_touch_form_refuses_a_time_before_1900(when, users, client, person):
    client.force_login(users[Role.MARKETER])
    before = counts()
    response = client.post(
        reverse("touches"),
        {
            "contact_email": "ada@example.com",
            "channel": "web",
            "campaign": "",
            "kind": "visit",
            "occurred_at": when,
            "submission": "a1b2c3d4-0000-4000-8000-000000000000",
        },
    )
    field_error(response, "occurred_at")
    assert counts() == before


def test_page_forms_accept_the_first_day_of_the_range(users, client, person):
    client.force_login(users[Role.MARKETER])
    response = client.post(
        reverse("consent-new", args=[person.pk]),
        {
            "purpose": "analytics",
            "granted": "granted",
            "source": "web",
            "occurred_at": "1900-01-01T00:00",
        },
    )
    assert response.status_code == 302
    assert Consent.objects.get().occurred_at.year == 1900
