"""The handoff loop end to end through the API: ruleset, scoring, handoff, deal, sale."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from handoff.models import Deal, Handoff, HandoffStatus, Qualification
from leadrecord.ledger import ledger_verify
from tests.factories import contact_make

pytestmark = pytest.mark.django_db

POINTS = {"channel:webinar": 30, "kind:form": 10, "disclosure:budget": 25}


@pytest.fixture
def clients(
    users: dict[str, Any], api_client_for: Callable[[User], APIClient]
) -> dict[str, APIClient]:
    return {role: api_client_for(cast(User, user)) for role, user in users.items()}


def _activate(manager: APIClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Spring rules", "points": POINTS, "mql_threshold": 50, "sla_hours": 48}
    created = manager.post("/api/v1/rulesets/", {**body, **overrides}, format="json")
    assert created.status_code == 201, created.json()
    activated = manager.post(f"/api/v1/rulesets/{created.json()['id']}/activate/")
    assert activated.status_code == 200, activated.json()
    return cast(dict[str, Any], activated.json())


def _touch(client: APIClient, contact: Contact, channel: str, kind: str = "other") -> None:
    response = client.post(
        "/api/v1/touches/",
        {"contact": contact.pk, "channel": channel, "kind": kind},
        format="json",
    )
    assert response.status_code == 201, response.json()


def test_touches_and_disclosures_qualify_under_the_active_ruleset(
    clients: dict[str, APIClient],
) -> None:
    ruleset = _activate(clients["manager"])
    contact = contact_make(organization="acme.example")
    _touch(clients["marketer"], contact, "webinar")
    contact.refresh_from_db()
    assert (contact.score, contact.qualified) == (30, False)

    # A marketing-only disclosure does not count: sales decides on what sales may see.
    disclosure = {"key": "budget", "value": "50k", "purpose": "qualification", "source": "form"}
    response = clients["marketer"].post(
        f"/api/v1/contacts/{contact.pk}/disclosures/",
        {**disclosure, "audience": "marketing"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    contact.refresh_from_db()
    assert contact.score == 30

    response = clients["marketer"].post(
        f"/api/v1/contacts/{contact.pk}/disclosures/",
        {**disclosure, "audience": "sales"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    contact.refresh_from_db()
    assert (contact.score, contact.qualified) == (55, True)
    qualification = Qualification.objects.get(contact=contact)
    assert qualification.qualified and qualification.ruleset.version == ruleset["version"]

    # Withdrawing the disclosure takes its points away again.
    withdrawn = clients["sales_rep"].post(f"/api/v1/disclosures/{response.json()['id']}/withdraw/")
    assert withdrawn.status_code == 200
    contact.refresh_from_db()
    assert (contact.score, contact.qualified) == (30, False)
    assert ledger_verify().ok


def test_the_loop_marketing_to_sales_to_a_won_deal(
    clients: dict[str, APIClient], users: dict[str, Any]
) -> None:
    _activate(clients["manager"])
    contact = contact_make(organization="acme.example")
    refused = clients["marketer"].post("/api/v1/handoffs/", {"contact": contact.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "no_buyer_consent"

    consent = {"purpose": "sales_contact", "granted": True, "source": "demo request form"}
    assert (
        clients["marketer"]
        .post(f"/api/v1/contacts/{contact.pk}/consents/", consent, format="json")
        .status_code
        == 201
    )
    created = clients["marketer"].post(
        "/api/v1/handoffs/", {"contact": contact.pk, "note": "Asked for a demo"}, format="json"
    )
    assert created.status_code == 201, created.json()
    handoff = created.json()
    assert handoff["status"] == "pending" and handoff["ruleset_version"] == 1
    assert handoff["sla_state"] == "on_time"
    again = clients["marketer"].post("/api/v1/handoffs/", {"contact": contact.pk}, format="json")
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "handoff_open"

    accepted = clients["sales_rep"].post(f"/api/v1/handoffs/{handoff['id']}/accept/")
    assert accepted.status_code == 200, accepted.json()
    assert accepted.json()["owner"] == users["sales_rep"].pk
    twice = clients["sales_rep"].post(f"/api/v1/handoffs/{handoff['id']}/accept/")
    assert twice.status_code == 409

    deal = clients["sales_rep"].post(
        "/api/v1/deals/",
        {
            "name": "Acme platform",
            "organization": contact.organization_id,
            "contacts": [{"contact": contact.pk, "role": "champion"}],
            "amount": "12000.00",
        },
        format="json",
    )
    assert deal.status_code == 201, deal.json()
    body = deal.json()
    assert body["source"] == "marketing"
    assert body["sourcing_handoff"] == handoff["id"]
    assert body["source_reason"].startswith("Marketing-sourced: a buying-group member's handoff")
    assert "#" not in body["source_reason"]
    assert body["contacts"] == [
        {"contact": contact.pk, "role": "champion", "other_organization": False}
    ]

    won = clients["sales_rep"].post(
        f"/api/v1/deals/{body['id']}/sale-events/",
        {"kind": "won", "amount": "12000.00"},
        format="json",
    )
    assert won.status_code == 201, won.json()
    again_won = clients["sales_rep"].post(
        f"/api/v1/deals/{body['id']}/sale-events/",
        {"kind": "won", "amount": "1.00"},
        format="json",
    )
    assert again_won.status_code == 409
    assert again_won.json()["errors"][0]["code"] == "already_won"
    detail = clients["marketer"].get(f"/api/v1/deals/{body['id']}/").json()
    assert detail["state"] == "won" and len(detail["sale_events"]) == 1
    assert ledger_verify().ok


def test_a_deal_without_a_handoff_is_sales_sourced_and_an_override_keeps_both(
    clients: dict[str, APIClient],
) -> None:
    _activate(clients["manager"])
    contact = contact_make(organization="globex.example")
    deal = (
        clients["sales_rep"]
        .post(
            "/api/v1/deals/",
            {
                "name": "Globex",
                "organization": contact.organization_id,
                "contacts": [{"contact": contact.pk, "role": "decision_maker"}],
                "amount": "500",
            },
            format="json",
        )
        .json()
    )
    assert deal["source"] == "sales"
    assert "no accepted handoff" in deal["source_reason"]
    no_reason = clients["sales_rep"].post(
        f"/api/v1/deals/{deal['id']}/override-source/",
        {"source": "marketing", "reason": "  "},
        format="json",
    )
    assert no_reason.status_code == 400
    overridden = clients["manager"].post(
        f"/api/v1/deals/{deal['id']}/override-source/",
        {"source": "marketing", "reason": "Came from the partner webinar, logged late"},
        format="json",
    )
    assert overridden.status_code == 200
    assert overridden.json()["source"] == "marketing"
    assert overridden.json()["derived_source"] == "sales"
    assert Deal.objects.get(pk=deal["id"]).derived_source == "sales"


def test_expired_handoffs_return_to_marketing() -> None:
    from handoff import services
    from leadrecord.ledger import Actor

    services.ruleset_activate(
        ruleset=services.ruleset_create(
            name="r", points={}, mql_threshold=10, sla_hours=2, actor=Actor.system("test")
        ),
        actor=Actor.system("test"),
    )
    contact = contact_make()
    from contacts.services import consent_record

    consent_record(
        contact=contact,
        purpose="sales_contact",
        granted=True,
        source="form",
        actor=Actor.system("test"),
    )
    handoff = services.handoff_create(
        contact=contact,
        actor=Actor.system("test"),
        occurred_at=timezone.now() - timedelta(hours=3),
    )
    assert services.handoffs_expire_due() == 1
    assert services.handoffs_expire_due() == 0
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.EXPIRED
    assert Handoff.objects.filter(status=HandoffStatus.PENDING).count() == 0
