"""The pages behind the leakage numbers: each count's link lists exactly its rows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from handoff import services
from handoff.models import Qualification, Ruleset
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports import metrics
from tests.factories import contact_make

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
DAY = timedelta(days=1)
SLUGS = ["qualified-not-handed-off", "handoffs-expired", "rejected-not-reengaged", "deals-stalled"]


@pytest.fixture
def leaks() -> None:
    """Two qualified people never handed off, and a deal open for 120 days."""
    ruleset = services.ruleset_create(
        name="Rules", points={}, mql_threshold=100, sla_hours=24, actor=SYSTEM
    )
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    for name in ("ada", "bo"):
        person = contact_make(email=f"{name}@acme.example", first_name=name.title())
        Qualification.objects.create(
            contact=person,
            ruleset=Ruleset.objects.get(status="active"),
            score=100,
            qualified=True,
            occurred_at=timezone.now() - 3 * DAY,
        )
    buyer = contact_make(email="cy@initech.example", organization="initech.example")
    assert buyer.organization is not None
    services.deal_create(
        name="Initech pilot",
        organization=buyer.organization,
        members=[services.Member(buyer, "champion")],
        amount=Decimal("400.00"),
        actor=SYSTEM,
        occurred_at=timezone.now() - 120 * DAY,
    )


def login(client: Client, users: dict[str, Any], role: str) -> Client:
    client.force_login(users[role])
    return client


def test_each_leak_links_to_a_list_of_its_rows(leaks: None, client: Client, users: Any) -> None:
    today = timezone.localdate()
    funnel = metrics.funnel(today - 30 * DAY, today)
    reader = login(client, users, Role.MARKETER)
    for leak in funnel.leakage:
        response = reader.get(leak.url)
        assert response.status_code == 200, leak.url
        assert response.context["total"] == leak.count
    stalled = reader.get(funnel.leakage[3].url)
    assert "Initech pilot" in stalled.content.decode()
    qualified = reader.get(funnel.leakage[0].url).content.decode()
    assert "Ada" in qualified and "Bo" in qualified and "2 people" in qualified


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.MARKETER, 200),
        (Role.SALES_REP, 200),
        (Role.MANAGER, 200),
        (Role.PRIVACY_OFFICER, 403),
        (Role.INTEGRATION, 403),
    ],
)
def test_lists_are_for_report_readers(
    client: Client, users: Any, slug: str, role: str, status: int
) -> None:
    assert login(client, users, role).get(f"/reports/lists/{slug}/").status_code == status


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get("/reports/lists/deals-stalled/")
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-10-10", "to": "2026-10-01"}, "to"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "<script>alert(1)</script>"}, "from"),
    ],
)
def test_bad_dates_are_shown_on_the_form(
    client: Client, users: Any, query: dict[str, str], field: str
) -> None:
    response = login(client, users, Role.MANAGER).get("/reports/lists/deals-stalled/", query)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_an_unknown_list_is_404(client: Client, users: Any) -> None:
    assert login(client, users, Role.MANAGER).get("/reports/lists/leads/").status_code == 404


def test_lists_are_read_only(client: Client, users: Any) -> None:
    response = login(client, users, Role.MANAGER).post("/reports/lists/deals-stalled/")
    assert response.status_code == 405
