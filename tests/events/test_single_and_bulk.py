"""The single-item APIs and ``POST events/`` write the same ledger payloads.

The same person, touch, consent, disclosure and sale go once through the
single-item endpoints (rolled back afterwards) and once through the bulk
path, and the ledger entries they leave are compared byte for byte, after
only what must differ is normalised: row ids (numbered in order of first
appearance), the seals' random nonces (the sealed values are compared
opened), and the (source system, external id) pair that only an event of the
bulk path carries for consents and disclosures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Channel
from contacts.sealing import SEALED_FIELD, contact_keys, unseal
from contacts.services import campaign_create
from handoff import services as handoff_services
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry
from tests.factories import contact_make

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
WHEN = timezone.now().replace(microsecond=0) - timedelta(days=2)
PERSON = {
    "email": "Grace.Hopper@Navy.example",
    "first_name": "Grace",
    "last_name": "Hopper",
    "organization": {"name": "US Navy", "domain": "navy.example"},
}
# Keys whose integer values are row ids, which the two runs draw differently.
ID_KEYS = {"organization", "campaign", "sale_event", "kept", "merged"}


@pytest.fixture
def client(users: dict[str, Any], api_client_for: Callable[[Any], APIClient]) -> APIClient:
    return api_client_for(users["manager"])


@pytest.fixture
def world() -> dict[str, Any]:
    """What both runs find on record: a campaign, and a deal to sell on."""
    web = Channel.objects.get(key="web")
    campaign = campaign_create(name="Launch", channel=web, actor=SYSTEM)
    buyer = contact_make(organization="initech.example")
    assert buyer.organization is not None
    deal, _ = handoff_services.deal_create(
        name="Initech",
        organization=buyer.organization,
        members=[handoff_services.Member(buyer, "champion")],
        amount=Decimal("9000"),
        external_id="CRM-D-1",
        occurred_at=WHEN - timedelta(days=30),
        actor=SYSTEM,
    )
    return {"campaign": campaign.pk, "deal": deal}


def _entries_since(seq: int) -> list[dict[str, Any]]:
    """The entries after ``seq``, normalised to what both paths must agree on."""
    entries = list(LedgerEntry.objects.filter(seq__gt=seq).order_by("seq"))
    keys = contact_keys({entry.contact_id for entry in entries if entry.contact_id})
    ids: dict[tuple[str, int], str] = {}

    def number(kind: str, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return value
        return ids.setdefault((kind, value), f"<{kind} {len(ids)}>")

    normalised = []
    for entry in entries:
        after = dict(entry.after or {})
        if SEALED_FIELD in after:
            after[SEALED_FIELD] = unseal(
                key=keys.get(entry.contact_id or 0), contact_id=entry.contact_id or 0, payload=after
            )
            assert after[SEALED_FIELD], "the sealed values open with the person's key"
        for key in ID_KEYS & after.keys():
            after[key] = number(key, after[key])
        normalised.append(
            {
                "action": entry.action,
                "subject_type": entry.subject_type,
                "subject_id": number(entry.subject_type, int(entry.subject_id)),
                "contact_id": number("contact", entry.contact_id),
                "before": entry.before,
                "after": after,
            }
        )
    return normalised


def _single(client: APIClient, world: dict[str, Any]) -> None:
    when = WHEN.isoformat()
    response = client.post("/api/v1/contacts/", {**PERSON, "occurred_at": when}, format="json")
    assert response.status_code == 201, response.content
    contact_id = response.json()["id"]
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "/api/v1/touches/",
            {
                "contact": contact_id,
                "channel": "web",
                "campaign": world["campaign"],
                "kind": "webinar_attended",
                "occurred_at": when,
                "source_system": "crm",
                "external_id": "T-1",
            },
        ),
        (
            f"/api/v1/contacts/{contact_id}/consents/",
            {
                "purpose": "sales_contact",
                "granted": True,
                "source": "webinar form",
                "notice_version": "v3",
                "occurred_at": when,
            },
        ),
        (
            f"/api/v1/contacts/{contact_id}/disclosures/",
            {
                "key": "budget",
                "value": "about 50k",
                "audience": "all",
                "purpose": "qualification",
                "source": "form",
                "expires_at": (WHEN + timedelta(days=90)).isoformat(),
                "occurred_at": when,
            },
        ),
        (
            f"/api/v1/deals/{world['deal'].pk}/sale-events/",
            {
                "kind": "won",
                "amount": "1234.50",
                "occurred_at": when,
                "source_system": "crm",
                "external_id": "S-1",
            },
        ),
    ]
    for url, body in calls:
        response = client.post(url, body, format="json")
        assert response.status_code == 201, (url, response.content)


def _bulk(client: APIClient, world: dict[str, Any]) -> None:
    when = WHEN.isoformat()
    common = {"source_system": "crm", "occurred_at": when}
    events = [
        {
            **common,
            "type": "touch",
            "external_id": "T-1",
            "contact": PERSON,
            "channel": "web",
            "campaign": world["campaign"],
            "kind": "webinar_attended",
        },
        {
            **common,
            "type": "consent",
            "external_id": "C-1",
            "contact": {"email": PERSON["email"]},
            "purpose": "sales_contact",
            "granted": True,
            "source": "webinar form",
            "notice_version": "v3",
        },
        {
            **common,
            "type": "disclosure",
            "external_id": "D-1",
            "contact": {"email": PERSON["email"]},
            "key": "budget",
            "value": "about 50k",
            "audience": "all",
            "purpose": "qualification",
            "source": "form",
            "expires_at": (WHEN + timedelta(days=90)).isoformat(),
        },
        {
            **common,
            "type": "sale",
            "external_id": "S-1",
            "deal_external_id": "CRM-D-1",
            "kind": "won",
            "amount": "1234.50",
        },
    ]
    response = client.post("/api/v1/events/", {"events": events}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 4, response.json()


def test_the_single_and_the_bulk_path_write_the_same_ledger_payloads(
    client: APIClient, world: dict[str, Any]
) -> None:
    start = LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    with transaction.atomic():
        _single(client, world)
        single = _entries_since(start)
        transaction.set_rollback(True)  # the bulk path then meets the same record
    assert not LedgerEntry.objects.filter(seq__gt=start).exists()

    _bulk(client, world)
    bulk = _entries_since(start)

    for entry in bulk:
        if entry["action"] in ("consent.record", "disclosure.record"):
            # Only an event carries a (source system, external id) pair for these.
            assert entry["after"].pop("source_system") == "crm"
            assert entry["after"].pop("external_id") in ("C-1", "D-1")

    assert [entry["action"] for entry in single] == [
        "organization.create",
        "contact.create",
        "touch.record",
        "consent.record",
        "disclosure.record",
        "sale.record",
    ]
    assert json.dumps(bulk).encode() == json.dumps(single).encode()
    assert ledger_verify().ok
