"""Attribution and contribution reconcile: gross attributed + outside + not yet - churn = net."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.services import consent_record
from handoff import services
from handoff.models import Deal, SaleEvent
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from reports.models import AttributionCredit, AttributionRun
from reports.runs import run_execute, run_request
from tests.factories import contact_make

from .conftest import DAY, touch, won_deal

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _deal(members: list[Contact], amount: str, name: str) -> Any:
    organization = members[0].organization
    assert organization is not None
    deal, _ = services.deal_create(
        name=name,
        organization=organization,
        members=[services.Member(member, "champion") for member in members],
        amount=Decimal(amount),
        actor=SYSTEM,
        occurred_at=timezone.now() - 20 * DAY,
    )
    return deal


def _sale(deal: Any, kind: str, amount: str | None, ago: timedelta) -> None:
    services.sale_event_record(
        deal=deal,
        kind=kind,
        amount=Decimal(amount) if amount is not None else None,
        actor=SYSTEM,
        occurred_at=timezone.now() - ago,
    )


@pytest.fixture
def books(record: dict[str, Contact]) -> dict[str, Any]:
    """The shared record (Ada and Bo buy for 1,000 five days ago), and around it: a sale with
    no touch at all, a sale whose only buyer withdrew analytics consent, churn, a lost deal,
    a sale outside the range, one run, and a sale recorded after that run."""
    quiet = contact_make(organization="quiet.example")
    _sale(_deal([quiet], "500.00", "No touches"), "won", "500.00", 4 * DAY)
    private = contact_make(organization="private.example")
    touch(private, "webinar", 10 * DAY)
    consent_record(contact=private, purpose="analytics", granted=False, source="form", actor=SYSTEM)
    _sale(_deal([private], "300.00", "Withdrawn"), "won", "300.00", 3 * DAY)
    acme = Deal.objects.get(name="Deal")
    _sale(acme, "churn", "200.00", 2 * DAY)
    lost = contact_make(organization="lost.example")
    touch(lost, "email", 9 * DAY)
    _sale(_deal([lost], "900.00", "Lost"), "lost", None, 2 * DAY)
    old = contact_make(organization="old.example")
    touch(old, "event", 80 * DAY)
    won_deal([old], amount="700.00", opened=70 * DAY, won=60 * DAY, name="Old")
    run, _ = run_request(trigger="command")
    run = run_execute(run_id=run.pk)
    late = contact_make(organization="late.example")
    touch(late, "web", 1 * DAY)
    _sale(_deal([late], "400.00", "After the run"), "won", "400.00", timedelta(hours=1))
    today = timezone.localdate()
    return {"run": run, "from": str(today - 30 * DAY), "to": str(today)}


def _independent(books: dict[str, Any]) -> dict[str, Decimal]:
    """The same figures from the raw rows, summed here in Python."""
    low = timezone.now() - 30 * DAY - DAY  # everything in the fixture is well inside or out
    events = [event for event in SaleEvent.objects.all() if event.occurred_at >= low]
    revenue = sum(
        (e.amount for e in events if e.kind in ("won", "expansion", "renewal")), Decimal(0)
    )
    churn = sum((e.amount for e in events if e.kind == "churn"), Decimal(0))
    credited = [
        credit
        for credit in AttributionCredit.objects.filter(run=books["run"], model="linear")
        if credit.converted_at >= low
    ]
    return {
        "gross_attributed": Decimal(str(round(sum(c.credit for c in credited), 2))),
        "churn": churn,
        "net_revenue": revenue - churn,
    }


def _money(value: str) -> Decimal:
    return Decimal(value)


def test_the_numbers_equal_independent_sums_and_reconcile(books, api_client_for, users) -> None:
    client: APIClient = api_client_for(users[Role.MARKETER])
    query = {"from": books["from"], "to": books["to"]}
    body = client.get("/api/v1/reports/reconciliation/", query).json()
    expected = _independent(books)
    assert _money(body["gross_attributed"]) == expected["gross_attributed"] == Decimal("1000.00")
    assert _money(body["churn"]) == expected["churn"] == Decimal("200.00")
    assert _money(body["net_revenue"]) == expected["net_revenue"] == Decimal("2000.00")
    assert body["outside_attribution"] == {
        "count": 2,
        "amount": "800.00",
        "no_touches": {"count": 1, "amount": "500.00"},
        "consent_withdrawn": {"count": 1, "amount": "300.00"},
    }
    assert body["not_yet_attributed"] == {"count": 1, "amount": "400.00"}
    assert body["run"]["id"] == books["run"].pk
    assert _money(body["net_revenue"]) == (
        _money(body["gross_attributed"])
        + _money(body["outside_attribution"]["amount"])
        + _money(body["not_yet_attributed"]["amount"])
        - _money(body["churn"])
    )
    # The same range as the contribution report, and the same net revenue.
    contribution = client.get("/api/v1/reports/contribution/", query).json()
    assert contribution["revenue"]["total"] == body["net_revenue"]


def test_once_a_run_has_read_it_the_late_sale_is_attributed(books, api_client_for, users):
    run, _ = run_request(trigger="command")
    run_execute(run_id=run.pk)
    client = api_client_for(users[Role.MANAGER])
    body = client.get(
        "/api/v1/reports/reconciliation/", {"from": books["from"], "to": books["to"]}
    ).json()
    assert body["gross_attributed"] == "1400.00"
    assert body["not_yet_attributed"] == {"count": 0, "amount": "0.00"}
    assert body["outside_attribution"]["amount"] == "800.00"


def test_before_any_run_every_conversion_is_not_yet_attributed(record, api_client_for, users):
    body = api_client_for(users[Role.MANAGER]).get("/api/v1/reports/reconciliation/").json()
    assert body["run"] is None
    assert body["gross_attributed"] == "0.00"
    assert body["not_yet_attributed"] == {"count": 1, "amount": "1000.00"}
    assert body["net_revenue"] == "1000.00"


def test_the_manager_dashboard_shows_the_reconciliation_line(books, users) -> None:
    manager = Client()
    manager.force_login(users[Role.MANAGER])
    page = manager.get(
        "/reports/manager/", {"from": books["from"], "to": books["to"]}
    ).content.decode()
    assert 'data-table="reconciliation"' in page
    for shown in ("1,000.00", "800.00", "400.00", "200.00", "2,000.00"):
        assert f">{shown}</td>" in page, shown
    assert "1 sale (500.00) with no touch in the lookback" in page
    csv_file = manager.get(
        "/reports/manager/",
        {"from": books["from"], "to": books["to"], "format": "csv", "table": "reconciliation"},
    ).content.decode()
    assert csv_file.splitlines()[1] == "1000.00,2,800.00,1,400.00,200.00,2000.00"


@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_reconciliation_is_not_for_every_role(api_client_for, users, role) -> None:
    response = api_client_for(users[role]).get("/api/v1/reports/reconciliation/")
    assert response.status_code == 403


def test_reconciliation_needs_a_caller() -> None:
    assert APIClient().get("/api/v1/reports/reconciliation/").status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-10-10", "to": "2026-10-01"}, "to"),
        ({"to": "2026-02-30"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2026-01-01'; DROP TABLE handoff_saleevent;--"}, "from"),
    ],
)
def test_bad_ranges_are_400s_naming_the_field(api_client_for, users, query, field) -> None:
    response = api_client_for(users[Role.MANAGER]).get("/api/v1/reports/reconciliation/", query)
    assert response.status_code == 400
    assert field in {error["attr"] for error in response.json()["errors"]}


def test_an_empty_range_reconciles_to_zero(books, api_client_for, users) -> None:
    body = (
        api_client_for(users[Role.SALES_REP])
        .get("/api/v1/reports/reconciliation/", {"from": "2020-01-01", "to": "2020-01-31"})
        .json()
    )
    assert body["gross_attributed"] == body["churn"] == body["net_revenue"] == "0.00"
    assert body["outside_attribution"]["count"] == 0
    assert AttributionRun.objects.filter(pk=body["run"]["id"]).exists()
