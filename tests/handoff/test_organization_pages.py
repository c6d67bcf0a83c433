"""Organization pages (list and one organization's people, deals, touches and revenue) and
moving a person to another organization from their page."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any, cast

import pytest
from django.test import Client
from django.urls import reverse

from contacts.models import Channel, Contact, Organization
from contacts.services import contact_create, contact_erase, touch_record
from handoff import services
from leadrecord.ledger import Actor
from leadrecord.models import LedgerAction, LedgerEntry
from leadrecord.roles import Role

from ..factories import contact_make
from .test_pages import ruleset_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
HOSTILE = "<script>alert(1)</script>"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def granite(users: dict[str, Any]) -> Organization:
    ruleset_make()
    ada = contact_make(
        email="ada@granite-biotech.example",
        first_name="Ada",
        organization="granite-biotech.example",
    )
    organization = cast(Organization, ada.organization)
    bob, _ = contact_create(email="bob@granite-biotech.example", first_name="Bob", actor=SYSTEM)
    gone, _ = contact_create(email="gone@granite-biotech.example", first_name="Gone", actor=SYSTEM)
    contact_erase(contact=gone, actor=SYSTEM)
    touch_record(contact=bob, channel=Channel.objects.get(key="webinar"), actor=SYSTEM)
    rep = users[Role.SALES_REP]
    deal, _ = services.deal_create(
        name="Granite platform",
        organization=organization,
        members=[services.Member(ada, "champion")],
        amount=Decimal("5000.00"),
        owner=rep,
        actor=Actor.of(rep),
    )
    services.sale_event_record(deal=deal, kind="won", amount=Decimal("4800.00"), actor=SYSTEM)
    contact_make(email="zed@other.example", organization="other.example")
    return organization


def test_the_list_counts_people_deals_and_revenue(users, granite):
    client = _client(users[Role.MANAGER])
    page = client.get(reverse("organizations"))
    assert page.status_code == 200
    rows = {row.record.name: row.record for row in page.context["table"].page}
    assert rows["Granite-Biotech"].people_count == 2  # the erased person is not counted
    assert rows["Granite-Biotech"].deal_count == 1
    assert rows["Granite-Biotech"].revenue == Decimal("4800.00")
    assert rows["Other"].revenue == Decimal("0")
    found = client.get(reverse("organizations"), {"search": "granite"})
    assert [row.record.name for row in found.context["table"].page] == ["Granite-Biotech"]
    by_people = (
        client.get(reverse("organizations"), {"sort": "-people_count"}).context["table"].page
    )
    assert next(iter(by_people)).record.name == "Granite-Biotech"
    download: Any = client.get(reverse("organizations"), {"format": "csv"})
    body = b"".join(download.streaming_content)
    rows_csv = list(csv.reader(io.StringIO(body.decode())))
    assert rows_csv[0] == ["Organization", "Domain", "People", "Deals", "Revenue"]


def test_the_privacy_officer_sees_people_not_money(users, granite):
    client = _client(users[Role.PRIVACY_OFFICER])
    listing = client.get(reverse("organizations"))
    assert "Revenue" not in listing.content.decode()
    page = client.get(reverse("organization", args=[granite.pk])).content.decode()
    assert "Ada" in page and "Granite platform" not in page and "4800" not in page


def test_an_organization_page_shows_its_people_deals_touches_and_revenue(users, granite):
    page = _client(users[Role.SALES_REP]).get(reverse("organization", args=[granite.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Ada" in text and "Bob" in text and "Gone" not in text
    assert "Granite platform" in text
    assert "4800.00" in text
    assert "Webinar attended" in text or "webinar" in text
    assert f"{reverse('contacts')}?organization={granite.pk}" in text


def test_an_unknown_organization_is_a_404(users):
    client = _client(users[Role.MARKETER])
    assert client.get("/organizations/999999/").status_code == 404


def test_integrations_have_no_organization_pages(users, granite):
    client = _client(users[Role.INTEGRATION])
    assert client.get(reverse("organizations")).status_code == 403
    assert client.get(reverse("organization", args=[granite.pk])).status_code == 403


def test_bad_searches_are_a_400(users):
    response = _client(users[Role.MARKETER]).get(reverse("organizations"), {"search": "x" * 201})
    assert response.status_code == 400
    hostile = _client(users[Role.MARKETER]).get(reverse("organizations"), {"search": HOSTILE})
    assert hostile.status_code == 200
    assert "<script>" not in hostile.content.decode()


# --- moving a person -------------------------------------------------------------------


def test_a_person_is_moved_with_the_move_on_the_record(users, granite):
    person = Contact.objects.get(email_key="bob@granite-biotech.example")
    other = Organization.objects.get(domain="other.example")
    client = _client(users[Role.MARKETER])
    url = reverse("contact-organization", args=[person.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"organization": other.pk, "reason": "Changed jobs"})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.organization == other
    entry = LedgerEntry.objects.get(action=LedgerAction.CONTACT_ORGANIZATION_MOVE)
    assert entry.actor_id == users[Role.MARKETER].pk
    assert entry.reason == "Changed jobs"
    # The same move again writes nothing.
    again = client.post(url, {"organization": other.pk})
    assert again.status_code == 409
    assert LedgerEntry.objects.filter(action=LedgerAction.CONTACT_ORGANIZATION_MOVE).count() == 1
    # Out of any organization.
    assert client.post(url, {"organization": ""}).status_code == 302
    person.refresh_from_db()
    assert person.organization is None


@pytest.mark.parametrize(
    "data",
    [
        {"organization": "999999"},
        {"organization": "granite"},
        {"organization": HOSTILE},
        {"organization": "", "reason": "x" * 501},
    ],
)
def test_bad_moves_are_a_400_and_write_nothing(users, granite, data):
    person = Contact.objects.get(email_key="bob@granite-biotech.example")
    entries = LedgerEntry.objects.count()
    response = _client(users[Role.MANAGER]).post(
        reverse("contact-organization", args=[person.pk]), data
    )
    assert response.status_code == 400
    assert "<script>" not in response.content.decode()
    person.refresh_from_db()
    assert person.organization == granite
    assert LedgerEntry.objects.count() == entries


@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_readers_may_not_move_people(users, granite, role):
    person = Contact.objects.get(email_key="bob@granite-biotech.example")
    response = _client(users[role]).post(
        reverse("contact-organization", args=[person.pk]), {"organization": ""}
    )
    assert response.status_code == 403
    person.refresh_from_db()
    assert person.organization == granite
