"""``sale`` events through ``POST events/``: deals named by external id, the deal's rules."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from handoff import services
from handoff.models import Deal, DealState, SaleEvent
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry
from tests.factories import contact_make

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"


@pytest.fixture
def integration(users: dict[str, Any], api_client_for: Callable[[User], APIClient]) -> APIClient:
    return api_client_for(cast(User, users["integration"]))


@pytest.fixture
def deal() -> Deal:
    contact = contact_make(organization="initech.example")
    assert contact.organization is not None
    created, _ = services.deal_create(
        name="Initech",
        organization=contact.organization,
        members=[services.Member(contact, "champion")],
        amount=Decimal("9000"),
        external_id="CRM-D-1",
        occurred_at=timezone.now() - timedelta(days=30),
        actor=Actor.system("test"),
    )
    return created


def sale(external_id: str, kind: str, amount: Any = "100.00", **extra: Any) -> dict[str, Any]:
    event = {
        "type": "sale",
        "source_system": "crm",
        "external_id": external_id,
        "occurred_at": (timezone.now() - timedelta(days=1)).isoformat(),
        "deal_external_id": "CRM-D-1",
        "kind": kind,
        **extra,
    }
    if amount is not None:
        event["amount"] = amount
    return event


def test_sale_events_follow_the_deals_rules_event_by_event(
    integration: APIClient, deal: Deal
) -> None:
    events = [
        sale("s1", "expansion"),  # not won yet: refused
        sale("s2", "won", "9000.00"),
        sale("s3", "expansion", "1500.50"),
        sale("s2", "won", "9000.00"),  # the same event again
        sale("s4", "won", "1.00"),  # won twice
        sale("s5", "renewal", None),  # no amount
        sale("s6", "won", "12.345"),  # three decimals
        sale("s7", "won", "-5"),
        sale("s8", "won", "5", currency="EUR"),
        sale("s9", "won", "5", deal_external_id="CRM-NOPE"),
        sale(
            "s10", "renewal", "100", occurred_at=(timezone.now() - timedelta(days=60)).isoformat()
        ),
    ]
    body = integration.post(URL, {"events": events}, format="json").json()
    summary = [(r["status"], (r["errors"] or [{}])[0].get("attr")) for r in body["results"]]
    assert summary == [
        ("rejected", "kind"),
        ("created", None),
        ("created", None),
        ("duplicate", None),
        ("rejected", "kind"),
        ("rejected", "amount"),
        ("rejected", "amount"),
        ("rejected", "amount"),
        ("rejected", "currency"),
        ("rejected", "deal_external_id"),
        ("rejected", "occurred_at"),
    ]
    assert body["results"][3]["id"] == body["results"][1]["id"]
    assert [r["errors"][0]["code"] for r in body["results"] if r["status"] == "rejected"][:2] == [
        "not_won",
        "already_won",
    ]
    deal.refresh_from_db()
    assert deal.state == DealState.WON
    assert sorted(SaleEvent.objects.values_list("kind", flat=True)) == ["expansion", "won"]
    assert LedgerEntry.objects.filter(action="sale.record").count() == 2
    assert ledger_verify().ok

    again = integration.post(URL, {"events": events}, format="json").json()
    assert again["created"] == 0 and SaleEvent.objects.count() == 2


def test_touches_in_a_batch_rescore_their_people(integration: APIClient) -> None:
    ruleset = services.ruleset_create(
        name="r",
        points={"channel:webinar": 20},
        mql_threshold=40,
        sla_hours=24,
        actor=Actor.system("test"),
    )
    services.ruleset_activate(ruleset=ruleset, actor=Actor.system("test"))
    when = (timezone.now() - timedelta(hours=1)).isoformat()
    events = [
        {
            "type": "touch",
            "source_system": "web",
            "external_id": f"t{n}",
            "occurred_at": when,
            "contact": {"email": f"p{n % 2}@rescore.example"},
            "channel": "webinar",
        }
        for n in range(5)
    ]
    assert integration.post(URL, {"events": events}, format="json").status_code == 200
    from contacts.models import Contact

    scores = dict(
        Contact.objects.filter(email_key__endswith="@rescore.example").values_list(
            "email_key", "score"
        )
    )
    assert scores == {"p0@rescore.example": 60, "p1@rescore.example": 40}
    assert Contact.objects.filter(qualified=True).count() == 2


@pytest.mark.parametrize(
    ("amount", "accepted"),
    [
        ("7", True),
        (".5", True),
        ("5.", True),
        ("0001", True),
        (" 12.30 ", True),
        ("123456789012.99", True),
        (12.5, True),
        ("1e3", False),
        ("+5", False),
        ("-1", False),
        ("1.234", False),
        ("1234567890123", False),
        ("NaN", False),
        ("abc", False),
        ("", False),
    ],
)
def test_the_api_and_the_bulk_path_take_the_same_amounts(
    users: dict[str, Any],
    api_client_for: Callable[[User], APIClient],
    integration: APIClient,
    deal: Deal,
    amount: Any,
    accepted: bool,
) -> None:
    other = contact_make(organization="globex.example")
    assert other.organization is not None
    single, _ = services.deal_create(
        name="Globex",
        organization=other.organization,
        members=[services.Member(other, "champion")],
        amount=Decimal("9000"),
        external_id="CRM-D-2",
        occurred_at=timezone.now() - timedelta(days=30),
        actor=Actor.system("test"),
    )
    bulk = integration.post(URL, {"events": [sale("m1", "won", amount)]}, format="json").json()
    result = bulk["results"][0]
    api = api_client_for(cast(User, users["manager"])).post(
        f"/api/v1/deals/{single.pk}/sale-events/",
        {"kind": "won", "amount": amount, "occurred_at": timezone.now().isoformat()},
        format="json",
    )
    if accepted:
        assert result["status"] == "created", result
        assert api.status_code == 201, api.json()
        assert SaleEvent.objects.get(deal=deal).amount == SaleEvent.objects.get(deal=single).amount
    else:
        assert result["status"] == "rejected"
        assert result["errors"][0]["attr"] == "amount"
        assert api.status_code == 400
        assert api.json()["errors"][0]["attr"] == "amount"
