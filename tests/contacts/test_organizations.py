"""People are linked to the known organization at their email's domain (never for free
mail), by the single and the bulk path alike, and can be moved with the move on the
ledger."""

from __future__ import annotations

from typing import Any

import pytest

from contacts.models import Contact, Organization
from contacts.services import (
    OrganizationInput,
    contact_create,
    contact_erase,
    contact_organization_move,
    domain_is_free_mail,
    email_domain,
    organization_get_or_create,
)
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerAction, LedgerEntry
from tests.factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
EVENTS = "/api/v1/events/"


@pytest.fixture
def granite() -> Organization:
    organization, _ = organization_get_or_create(
        name="Granite Biotech", domain="granite-biotech.example", actor=SYSTEM
    )
    return organization


def test_email_domain_and_free_mail():
    assert email_domain("ada@Granite-Biotech.example") == "granite-biotech.example"
    assert email_domain("no-at-sign") == ""
    assert domain_is_free_mail("gmail.com")
    assert domain_is_free_mail("Outlook.com")
    assert not domain_is_free_mail("granite-biotech.example")


def test_a_new_person_at_a_known_domain_joins_that_organization(granite):
    contact, created = contact_create(email="Ada@Granite-Biotech.example", actor=SYSTEM)
    assert created
    assert contact.organization == granite
    entry = LedgerEntry.objects.get(action="contact.create", contact_id=contact.pk)
    assert entry.after is not None
    assert entry.after["organization"] == granite.pk


def test_unknown_and_free_mail_domains_link_to_nothing(granite):
    Organization.objects.create(name="Gmail", domain="gmail.com", created_at=granite.created_at)
    free, _ = contact_create(email="ada@gmail.com", actor=SYSTEM)
    unknown, _ = contact_create(email="ada@elsewhere.example", actor=SYSTEM)
    assert free.organization is None
    assert unknown.organization is None
    # No organization is created from a domain alone.
    assert not Organization.objects.filter(domain="elsewhere.example").exists()


def test_an_organization_given_wins_over_the_domain(granite):
    contact, _ = contact_create(
        email="ada@granite-biotech.example",
        organization=OrganizationInput(name="Initech", domain="initech.example"),
        actor=SYSTEM,
    )
    assert contact.organization is not None
    assert contact.organization.domain == "initech.example"


def test_events_link_new_people_by_domain_like_the_single_path(
    granite, users: dict[str, Any], api_client_for
):
    client = api_client_for(users["integration"])
    events = [
        {
            "type": "touch",
            "source_system": "hubspot",
            "external_id": f"t-{n}",
            "occurred_at": "2026-10-01T09:00:00+02:00",
            "contact": {"email": email},
            "channel": "webinar",
            "kind": "webinar_attended",
        }
        for n, email in enumerate(
            ["bo@granite-biotech.example", "cy@gmail.com", "di@unknown.example"]
        )
    ]
    events.append(
        {
            **events[0],
            "external_id": "t-named",
            "contact": {
                "email": "ed@granite-biotech.example",
                "organization": {"name": "Initech", "domain": "initech.example"},
            },
        }
    )
    response = client.post(EVENTS, {"events": events}, format="json")
    assert response.status_code == 200, response.content
    orgs = dict(Contact.objects.values_list("email_key", "organization__domain"))
    assert orgs["bo@granite-biotech.example"] == "granite-biotech.example"
    assert orgs["cy@gmail.com"] is None
    assert orgs["di@unknown.example"] is None
    assert orgs["ed@granite-biotech.example"] == "initech.example"
    entry = LedgerEntry.objects.get(
        action="contact.create",
        contact_id=Contact.objects.get(email_key="bo@granite-biotech.example").pk,
    )
    assert entry.after["organization"] == granite.pk


def test_a_move_is_on_the_ledger(granite):
    contact = contact_make(organization="initech.example")
    before = contact.organization_id
    moved = contact_organization_move(
        contact=contact, organization=granite, actor=SYSTEM, reason="Changed jobs"
    )
    assert moved.organization == granite
    contact.refresh_from_db()
    assert contact.organization == granite
    entry = LedgerEntry.objects.filter(action=LedgerAction.CONTACT_ORGANIZATION_MOVE).get()
    assert entry.before == {"organization": before}
    assert entry.after == {"organization": granite.pk}
    assert entry.reason == "Changed jobs"
    assert entry.contact_id == contact.pk
    ledger_verify()
    # Out of any organization is a move too.
    contact_organization_move(contact=contact, organization=None, actor=SYSTEM)
    contact.refresh_from_db()
    assert contact.organization is None


def test_a_move_to_the_same_organization_or_of_an_erased_person_is_refused(granite):
    contact = contact_make(organization="granite-biotech.example")
    entries = LedgerEntry.objects.count()
    with pytest.raises(Conflict):
        contact_organization_move(contact=contact, organization=granite, actor=SYSTEM)
    with pytest.raises(InvalidInput):
        contact_organization_move(
            contact=contact, organization=None, actor=SYSTEM, reason="x" * 501
        )
    contact_erase(contact=contact, actor=SYSTEM)
    entries = LedgerEntry.objects.count()
    with pytest.raises(Conflict):
        contact_organization_move(contact=contact, organization=None, actor=SYSTEM)
    assert LedgerEntry.objects.count() == entries
