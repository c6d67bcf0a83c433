"""The contact and deal lists: every filter, sorting by each column, counts, totals, and the
CSV of the filtered rows with the reader's visibility (a marketer never gets a sales-only
disclosure)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse

from contacts.models import Contact, Organization
from contacts.services import consent_record, disclosure_record
from handoff import services
from handoff.models import Deal, Handoff
from leadrecord.ledger import Actor
from leadrecord.roles import Role

from ..factories import contact_make
from .test_pages import consenting, ruleset_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HOSTILE = "<script>alert(1)</script>"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def _names(response: Any) -> list[str]:
    return [row.record.display_name for row in response.context["table"].page.object_list]


def _qualify(*contacts: Contact) -> None:
    # Qualification follows scoring under a ruleset; here only the flag the lists read.
    Contact.objects.filter(pk__in=[contact.pk for contact in contacts]).update(qualified=True)


@pytest.fixture
def world(users: dict[str, Any]) -> dict[str, Contact]:
    ruleset_make()
    ready = consenting("ready@acme.example")  # qualified, consent, nothing pending
    unqualified = consenting("unqualified@acme.example")
    pending = consenting("pending@acme.example")
    silent = contact_make(email="silent@acme.example", first_name="Silent")  # no say-so
    owned = consenting("owned@acme.example")
    _qualify(ready, pending, silent, owned)
    services.handoff_create(contact=pending, actor=SYSTEM)
    accepted = services.handoff_create(contact=owned, actor=SYSTEM)
    services.handoff_accept(handoff=accepted, user=users[Role.SALES_REP])
    return {
        "ready": ready,
        "unqualified": unqualified,
        "pending": pending,
        "silent": silent,
        "owned": owned,
    }


def _emails(response: Any) -> set[str]:
    return {row.record.email for row in response.context["table"].page.object_list}


def test_can_hand_off_is_qualified_with_say_so_and_nothing_pending(users, world):
    client = _client(users[Role.MARKETER])
    url = reverse("contacts")
    can = client.get(url, {"can_hand_off": "true"})
    assert can.status_code == 200
    # Someone sales accepted before may be handed over again, as handoff_create allows.
    assert _emails(can) == {"ready@acme.example", "owned@acme.example"}
    cannot = client.get(url, {"can_hand_off": "false"})
    assert _emails(cannot) == {
        "unqualified@acme.example",
        "pending@acme.example",
        "silent@acme.example",
    }


def test_a_self_declared_ready_stage_is_a_say_so_only_for_who_may_see_it(users, world):
    person = contact_make(email="talk@acme.example")
    disclosure_record(
        contact=person,
        key="journey_stage",
        value="ready_to_talk",
        audience="sales",
        purpose="qualification",
        source="form",
        actor=SYSTEM,
    )
    # The stage opened a handoff on its own; once sales returns it, nothing is pending.
    for handoff in Handoff.objects.filter(contact=person, status="pending"):
        services.handoff_reject(handoff=handoff, user=users[Role.SALES_REP], reason="bad_timing")
    _qualify(person)
    url = reverse("contacts")
    rep = _emails(_client(users[Role.MANAGER]).get(url, {"can_hand_off": "true"}))
    marketer = _emails(_client(users[Role.MARKETER]).get(url, {"can_hand_off": "true"}))
    assert "talk@acme.example" in rep
    assert "talk@acme.example" not in marketer


def test_owner_and_consent_filters(users, world):
    client = _client(users[Role.MANAGER])
    url = reverse("contacts")
    owned = client.get(url, {"owner": users[Role.SALES_REP].pk})
    assert _emails(owned) == {"owned@acme.example"}
    assert _emails(client.get(url, {"owner": users[Role.MANAGER].pk})) == set()
    consent_record(
        contact=world["owned"], purpose="sales_contact", granted=False, source="call", actor=SYSTEM
    )
    granted = client.get(url, {"consent": "sales_contact"})
    assert _emails(granted) == {
        "ready@acme.example",
        "unqualified@acme.example",
        "pending@acme.example",
    }


def test_sorting_by_each_column_and_counts(users, world):
    client = _client(users[Role.MANAGER])
    url = reverse("contacts")
    page = client.get(url)
    assert "Rows 1 to 5 of 5." in page.content.decode()
    for column in (
        "name",
        "email",
        "organization",
        "title",
        "journey_stage",
        "score",
        "qualified",
        "created_at",
    ):
        for sort in (column, f"-{column}"):
            assert client.get(url, {"sort": sort}).status_code == 200, sort
    emails = [row.record.email for row in client.get(url, {"sort": "email"}).context["table"].page]
    assert emails == sorted(emails)
    reverse_emails = client.get(url, {"sort": "-email"}).context["table"].page
    assert [row.record.email for row in reverse_emails] == sorted(emails, reverse=True)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"owner": "abc"}, "owner"),
        ({"owner": "999999"}, "owner"),
        ({"can_hand_off": "maybe"}, "can_hand_off"),
        ({"consent": "everything"}, "consent"),
        ({"consent": HOSTILE}, "consent"),
    ],
)
def test_bad_contact_filters_are_a_400_naming_the_field(users, world, query, field):
    client = _client(users[Role.MARKETER])
    response = client.get(reverse("contacts"), query)
    assert response.status_code == 400
    assert response.context["filter_form"].errors[field]
    assert "<script>" not in response.content.decode()
    assert client.get(reverse("contacts"), {**query, "format": "csv"}).status_code == 400


def test_the_csv_is_the_filtered_list_as_the_reader_may_see_it(users, world):
    for audience, value in (("sales", "ready_to_talk"), ("marketing", "comparing")):
        disclosure_record(
            contact=world["ready"],
            key="journey_stage",
            value=value,
            audience=audience,
            purpose="qualification",
            source="conversation" if audience == "sales" else "form",
            actor=SYSTEM,
        )
    url = reverse("contacts")
    marketer = _csv(_client(users[Role.MARKETER]).get(url, {"format": "csv", "search": "ready"}))
    rep = _csv(_client(users[Role.SALES_REP]).get(url, {"format": "csv", "search": "ready"}))
    assert marketer[0][:5] == ["Name", "Email", "Organization", "Title", "Stage"]
    assert [row[1] for row in marketer[1:]] == ["ready@acme.example"]
    assert marketer[1][4] == "Comparing"
    assert "Ready to talk" not in "".join(",".join(row) for row in marketer)
    assert rep[1][4] == "Ready to talk"
    everyone = _csv(_client(users[Role.MANAGER]).get(url, {"format": "csv"}))
    assert len(everyone) == 1 + 5


def test_hostile_names_are_escaped_on_the_page_and_text_in_the_csv(users):
    contact_make(email="hostile@acme.example", first_name="=cmd|' /C calc'!A0", last_name=HOSTILE)
    client = _client(users[Role.MARKETER])
    page = client.get(reverse("contacts")).content.decode()
    assert HOSTILE not in page
    rows = _csv(client.get(reverse("contacts"), {"format": "csv"}))
    assert rows[1][0].startswith("'=cmd")


def test_the_contact_list_is_closed_to_integrations(users):
    assert _client(users[Role.INTEGRATION]).get(reverse("contacts")).status_code == 403


# --- deals -------------------------------------------------------------------------------


@pytest.fixture
def deals(users: dict[str, Any]) -> list[Deal]:
    ruleset_make()
    rep = users[Role.SALES_REP]
    made = []
    for n, (owner, amount) in enumerate(
        [(rep, "1000.00"), (rep, "2500.50"), (users[Role.MANAGER], "400.00")]
    ):
        person = contact_make(email=f"buyer{n}@org{n}.example", organization=f"org{n}.example")
        deal, _ = services.deal_create(
            name=f"Deal {n}",
            organization=cast(Organization, person.organization),
            members=[services.Member(person, "champion")],
            amount=Decimal(amount),
            owner=owner,
            actor=Actor.of(owner),
        )
        made.append(deal)
    return made


def test_deals_filter_by_owner_source_state_and_days_with_a_total(users, deals):
    client = _client(users[Role.SALES_REP])
    url = reverse("deals")
    everything = client.get(url)
    assert everything.status_code == 200
    assert everything.context["total_amount"] == Decimal("3900.50")
    assert "Rows 1 to 3 of 3." in everything.content.decode()
    mine = client.get(url, {"owner": users[Role.SALES_REP].pk})
    assert mine.context["total_amount"] == Decimal("3500.50")
    assert {row.record.name for row in mine.context["table"].page} == {"Deal 0", "Deal 1"}
    assert client.get(url, {"source": "sales"}).context["total_amount"] == Decimal("3900.50")
    assert client.get(url, {"source": "marketing"}).context["total_amount"] == Decimal("0")
    assert client.get(url, {"state": "won"}).context["total_amount"] == Decimal("0")
    today = deals[0].occurred_at.date().isoformat()
    assert client.get(url, {"created_from": today}).context["total_amount"] == Decimal("3900.50")
    assert client.get(url, {"created_to": "2001-01-01"}).context["total_amount"] == Decimal("0")
    for column in ("name", "organization", "amount", "owner", "state", "effective_source"):
        assert client.get(url, {"sort": f"-{column}"}).status_code == 200
    by_amount = client.get(url, {"sort": "-amount"}).context["table"].page
    assert [row.record.name for row in by_amount] == ["Deal 1", "Deal 0", "Deal 2"]
    rows = _csv(client.get(url, {"format": "csv", "owner": users[Role.SALES_REP].pk}))
    assert rows[0][:3] == ["Deal", "Organization", "Amount"]
    assert sorted(row[0] for row in rows[1:]) == ["Deal 0", "Deal 1"]


@pytest.mark.parametrize(
    "query",
    [
        {"state": "pending"},
        {"source": HOSTILE},
        {"owner": "-1"},
        {"created_from": "31/12/2026"},
        {"created_to": "9999-01-01"},
    ],
)
def test_bad_deal_filters_are_a_400(users, deals, query):
    response = _client(users[Role.MANAGER]).get(reverse("deals"), query)
    assert response.status_code == 400
    assert response.context["filter_form"].errors[next(iter(query))]


@pytest.mark.parametrize("role", [Role.MARKETER, Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_other_roles_may_not_list_deals(users, role):
    assert _client(users[role]).get(reverse("deals"), {"format": "csv"}).status_code == 403


def test_a_person_without_a_last_name_is_named_and_linked(users):
    person = contact_make(email="solo@acme.example", first_name="Solo", last_name="")
    page = _client(users[Role.MARKETER]).get(reverse("contacts")).content.decode()
    assert f'<a href="{reverse("contact", args=[person.pk])}">Solo</a>' in page
