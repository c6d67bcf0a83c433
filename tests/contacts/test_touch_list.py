"""The list of all touches: filters by channel, campaign, kind and days, sorting, counts,
and the CSV of the filtered rows; erased people's touches are not listed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from contacts.models import Channel
from contacts.services import campaign_create, contact_erase, touch_record
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from tests.factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
URL = "/touches/list/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def touches() -> dict[str, Any]:
    web = Channel.objects.get(key="web")
    call = Channel.objects.get(key="sales_call")
    launch = campaign_create(name="Launch", channel=web, actor=SYSTEM)
    ada = contact_make(email="ada@acme.example", first_name="Ada", last_name="Lovelace")
    bob = contact_make(email="bob@acme.example", first_name="Bob", last_name="Babbage")
    gone = contact_make(email="gone@acme.example", first_name="Gone")
    for contact, channel, campaign, kind, day in [
        (ada, web, launch, "email_click", 1),
        (ada, call, None, "meeting", 5),
        (bob, web, launch, "visit", 9),
        (gone, web, launch, "visit", 3),
    ]:
        touch_record(
            contact=contact,
            channel=channel,
            campaign=campaign,
            kind=kind,
            occurred_at=datetime(2026, 11, day, 10, tzinfo=UTC),
            actor=SYSTEM,
        )
    contact_erase(contact=gone, actor=SYSTEM)
    return {"web": web, "call": call, "launch": launch}


def _people(response: Any) -> list[str]:
    return [row.record.contact.first_name for row in response.context["table"].page]


def test_filters_and_counts(users, touches):
    client = _client(users[Role.MARKETER])
    everything = client.get(URL)
    assert everything.status_code == 200
    assert "Rows 1 to 3 of 3." in everything.content.decode()
    assert _people(everything) == ["Bob", "Ada", "Ada"]  # latest first by when it happened
    assert _people(client.get(URL, {"channel": touches["call"].pk})) == ["Ada"]
    assert _people(client.get(URL, {"campaign": touches["launch"].pk})) == ["Bob", "Ada"]
    assert _people(client.get(URL, {"kind": "meeting"})) == ["Ada"]
    days = client.get(URL, {"occurred_from": "2026-11-02", "occurred_to": "2026-11-06"})
    assert _people(days) == ["Ada"]
    page = everything.content.decode()
    assert "Email clicked" in page and "Sales call" in page


def test_sorting_and_csv(users, touches):
    client = _client(users[Role.MANAGER])
    for column in (
        "occurred_at",
        "person",
        "channel",
        "kind",
        "campaign",
        "source_system",
        "recorded_at",
    ):
        for sort in (column, "-" + column):
            assert client.get(URL, {"sort": sort}).status_code == 200
    assert _people(client.get(URL, {"sort": "occurred_at"})) == ["Ada", "Ada", "Bob"]
    assert _people(client.get(URL, {"sort": "person"}))[0] == "Bob"
    rows = _csv(client.get(URL, {"format": "csv", "campaign": touches["launch"].pk}))
    assert rows[0][:4] == ["When", "Person", "Channel", "Kind"]
    assert [row[1] for row in rows[1:]] == ["Bob Babbage", "Ada Lovelace"]
    assert "Gone" not in str(rows)


@pytest.mark.parametrize(
    "query",
    [
        {"channel": "web"},
        {"campaign": "99999"},
        {"kind": "<script>"},
        {"occurred_from": "2026-02-30"},
        {"occurred_to": "0001-01-01"},
    ],
)
def test_bad_filters_are_a_400(users, touches, query):
    response = _client(users[Role.MARKETER]).get(URL, query)
    assert response.status_code == 400
    assert response.context["filter_form"].errors[next(iter(query))]
    assert "<script>" not in response.content.decode()


@pytest.mark.parametrize("role", [Role.SALES_REP, Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_other_roles_may_not_list_touches(users, role):
    assert _client(users[role]).get(reverse("touch-list")).status_code == 403


def test_a_person_without_a_last_name_is_named_and_linked(users):
    person = contact_make(email="solo@acme.example", first_name="Solo", last_name="")
    touch_record(contact=person, channel=Channel.objects.get(key="web"), actor=SYSTEM)
    page = _client(users[Role.MARKETER]).get(URL).content.decode()
    assert f'<a href="{reverse("contact", args=[person.pk])}">Solo</a>' in page
