"""The Record page: filters (action, who, person, days), sorting by any column, counts,
paging, and the CSV of exactly the filtered rows."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client

from contacts.services import contact_organization_move
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from tests.factories import contact_make

pytestmark = pytest.mark.django_db

URL = "/record/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def people() -> list[Any]:
    return [contact_make(first_name=f"P{n}") for n in range(3)]


def test_filters_by_action_person_and_who(users, people):
    client = _client(users["manager"])
    page = client.get(URL, {"action": "contact.create"})
    assert page.status_code == 200
    assert "Rows 1 to 3 of 3." in page.content.decode()
    person = people[1]
    page = client.get(URL, {"person": person.pk})
    assert "Rows 1 to 1 of 1." in page.content.decode()
    assert "Person created" in page.content.decode()
    assert (
        client.get(URL, {"actor": "nobody-like-this"})
        .content.decode()
        .count("No entries match these filters.")
        == 1
    )


def test_sorting_by_any_column_and_paging(users):
    for n in range(55):
        contact_make(first_name=f"P{n}")
    client = _client(users["privacy_officer"])
    first = client.get(URL).content.decode()
    assert "Rows 1 to 50 of 55." in first
    assert "Page 1 of 2" in first
    ascending = client.get(URL, {"sort": "seq"}).context["table"].page.object_list
    assert [row.record.seq for row in ascending][:2] == [1, 2]
    descending = client.get(URL, {"sort": "-seq"}).context["table"].page.object_list
    assert next(row.record.seq for row in descending) == 55
    for column in ("occurred_at", "recorded_at", "actor_label", "action", "subject", "reason"):
        assert client.get(URL, {"sort": column}).status_code == 200
    # An unknown column or a page past the end still answers.
    assert client.get(URL, {"sort": "hash;drop"}).status_code == 200
    assert client.get(URL, {"page": "999"}).context["table"].page.number == 2
    assert client.get(URL, {"page": "x"}).status_code == 200


def test_csv_holds_the_filtered_rows_on_every_page(users, people):
    for n in range(60):
        contact_make(first_name=f"Q{n}")
    client = _client(users["manager"])
    rows = _csv(client.get(URL, {"action": "contact.create", "format": "csv", "page": "2"}))
    assert rows[0] == ["#", "Happened", "Recorded", "Who", "Action", "Subject", "Reason"]
    assert len(rows) == 1 + 63
    assert {row[4] for row in rows[1:]} == {"Person created"}


def test_a_spreadsheet_formula_in_a_reason_stays_text(users):
    contact = contact_make(organization="granite.example")
    contact_organization_move(
        contact=contact, organization=None, actor=Actor.system("test"), reason="=HYPERLINK(1)"
    )
    rows = _csv(
        _client(users["manager"]).get(URL, {"format": "csv", "action": "contact.organization_move"})
    )
    assert rows[1][6] == "'=HYPERLINK(1)"


@pytest.mark.parametrize(
    "query",
    [
        {"action": "contact.delete"},
        {"person": "abc"},
        {"person": "0"},
        {"person": str(2**64)},
        {"occurred_from": "1899-12-31"},
        {"occurred_to": "2026-13-01"},
        {"actor": "x" * 151},
    ],
)
def test_bad_filters_are_a_400_naming_the_field(users, people, query):
    response = _client(users["manager"]).get(URL, query)
    assert response.status_code == 400
    name = next(iter(query))
    assert response.context["filter_form"].errors[name]
    # A bad filter never downloads everything instead.
    csv_response = _client(users["manager"]).get(URL, {**query, "format": "csv"})
    assert csv_response.status_code == 400


def test_days_filter_by_when_it_happened(users, people):
    client = _client(users["manager"])
    entries = LedgerEntry.objects.count()
    today = LedgerEntry.objects.order_by("seq").last().occurred_at.date().isoformat()  # type: ignore[union-attr]
    page = client.get(URL, {"occurred_from": today, "occurred_to": today})
    assert f"of {entries}." in page.content.decode()
    assert "Nothing to show." in client.get(URL, {"occurred_to": "2000-01-01"}).content.decode()


@pytest.mark.parametrize("role", ["marketer", "sales_rep", "integration"])
def test_other_roles_may_not_read_the_record(users, role):
    assert _client(users[role]).get(URL, {"format": "csv"}).status_code == 403
