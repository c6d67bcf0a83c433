"""A row that already holds a time Python cannot read stays readable and exportable.

Before the accepted range existed, ``POST events/`` stored an expiry of
9999-12-31T23:59:59-14:00, which PostgreSQL keeps as year 10000; from then on
every read of that person failed (psycopg2: "year 10000 is out of range"), the
export and the withdrawal that could remove it included. Such values are put
in here by raw SQL, as an old row or a hand edit would hold them, and read back
as the nearest end of the range; a time Python can hold reads as stored.
"""

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from contacts import services
from contacts.models import Contact, Disclosure
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.roles import Role

from ..factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
EARLIEST = "1900-01-01T00:00:00Z"
LATEST = "2200-12-31T23:59:59.999999Z"

# What each database may hold that Python cannot (or can only just) read, and how it reads.
STORED: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "postgresql": {
        "expires_at": ("10000-01-01 09:59:59+00", LATEST),
        "disclosed_at": ("0001-12-31 23:00:00+00 BC", EARLIEST),
        "created_at": ("0001-01-01 00:00:00+00", "0001-01-01T00:00:00Z"),
    },
    # Django keeps naive UTC text in SQLite, and its own reader made these None. (SQLite
    # compares that text as text: a year-10000 expiry would count as past there, so the
    # late value goes in a creation time.)
    "sqlite": {
        "expires_at": (None, None),
        "disclosed_at": ("0000-00-00 00:00:00", EARLIEST),
        "created_at": ("10000-01-01 09:59:59", LATEST),
    },
}


def stored(column: str) -> str | None:
    return STORED[connection.vendor][column][0]


def reads_as(column: str) -> str | None:
    return STORED[connection.vendor][column][1]


@pytest.fixture
def person() -> Contact:
    return contact_make(email="ada@example.com")


@pytest.fixture
def disclosure(person: Contact) -> Disclosure:
    disclosure = services.disclosure_record(
        contact=person,
        actor=SYSTEM,
        key="budget",
        value="about 50k",
        audience="all",
        purpose="qualification",
        source="form",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Disclosure._meta.db_table} SET disclosed_at = %s, expires_at = %s "
            "WHERE id = %s",
            [stored("disclosed_at"), stored("expires_at"), disclosure.pk],
        )
        cursor.execute(
            f"UPDATE {Contact._meta.db_table} SET created_at = %s WHERE id = %s",
            [stored("created_at"), person.pk],
        )
    return disclosure


def the_disclosure(answer: dict[str, Any]) -> dict[str, Any]:
    [found] = [item for item in answer["disclosures"] if item["key"] == "budget"]
    return found


def test_the_contact_and_its_disclosures_read_through_the_api(
    disclosure, person, users, api_client_for
):
    client = api_client_for(users[Role.MARKETER])
    detail = client.get(f"/api/v1/contacts/{person.pk}/")
    assert detail.status_code == 200, detail.content
    assert detail.json()["created_at"] == reads_as("created_at")
    shown = the_disclosure(detail.json())
    assert (shown["disclosed_at"], shown["expires_at"]) == (
        reads_as("disclosed_at"),
        reads_as("expires_at"),
    )
    listed = client.get(f"/api/v1/contacts/{person.pk}/disclosures/")
    assert listed.status_code == 200
    assert listed.json()["results"][0]["expires_at"] == reads_as("expires_at")
    assert client.get("/api/v1/contacts/").status_code == 200
    assert client.get(f"/api/v1/contacts/{person.pk}/timeline/").status_code == 200


def test_the_subject_access_export_holds_the_disclosure(disclosure, person, users, api_client_for):
    response = api_client_for(users[Role.PRIVACY_OFFICER]).get(
        f"/api/v1/contacts/{person.pk}/export/"
    )
    assert response.status_code == 200, response.content
    assert response.json()["disclosures"][0]["value"] == "about 50k"
    page = Client()
    page.force_login(users[Role.PRIVACY_OFFICER])
    download = page.post(reverse("contact-export", args=[person.pk]))
    assert download.status_code == 200
    assert json.loads(download.content)["disclosures"][0]["value"] == "about 50k"


def test_the_contact_page_shows_the_person(disclosure, person, users):
    page = Client()
    page.force_login(users[Role.MARKETER])
    response = page.get(reverse("contact", args=[person.pk]))
    assert response.status_code == 200
    assert "about 50k" in response.content.decode()


def test_the_disclosure_can_be_withdrawn(disclosure, person, users, api_client_for):
    client = api_client_for(users[Role.MARKETER])
    response = client.post(f"/api/v1/disclosures/{disclosure.pk}/withdraw/")
    assert response.status_code == 200, response.content
    after = client.get(f"/api/v1/contacts/{person.pk}/")
    assert [item["key"] for item in after.json()["disclosures"]] == []
    assert ledger_verify().ok


def test_withdrawing_from_the_page_works_too(disclosure, person, users):
    page = Client()
    page.force_login(users[Role.MARKETER])
    response = page.post(reverse("disclosure-withdraw", args=[disclosure.pk]))
    assert response.status_code == 302
    disclosure.refresh_from_db()
    assert disclosure.withdrawn_at is not None
