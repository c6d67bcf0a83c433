"""Attribution follows the record within minutes, with or without a broker.

The embedded default has no worker and no beat: the web process itself runs the
due periodic jobs after its responses (``leadrecord.periodic``), so a new sale
reaches attribution, and overdue handoffs expire, with nothing but requests.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Channel
from contacts.services import consent_record, touch_record
from handoff import services
from handoff.models import Handoff, HandoffStatus
from leadrecord.ledger import Actor
from leadrecord.periodic import background_wait
from leadrecord.roles import Role
from reports.freshness import attribution_freshen, changes_since
from reports.models import AttributionCredit, AttributionRun, RunStatus
from reports.runs import run_execute, run_request

from .conftest import DAY

SYSTEM = Actor.system("test")
MINUTE = timedelta(minutes=1)


def run_now() -> AttributionRun:
    run, _ = run_request(trigger="command")
    return run_execute(run_id=run.pk)


def _won(record: dict[str, Any], amount: str, ago: timedelta = DAY) -> int:
    """A new deal of Ada's organization, won now: its sale event's id."""
    ada = record["ada"]
    deal, _ = services.deal_create(
        name="Second deal",
        organization=ada.organization,
        members=[services.Member(ada, "champion")],
        amount=Decimal(amount),
        actor=SYSTEM,
        occurred_at=timezone.now() - 2 * ago,
    )
    event, _ = services.sale_event_record(
        deal=deal, kind="won", amount=Decimal(amount), actor=SYSTEM
    )
    return event.pk


def _attributed_total(client: APIClient) -> tuple[dict[str, Any], float]:
    body = client.get("/api/v1/reports/attribution/", {"model": "linear"}).json()
    return body, round(sum(row["credit"] for row in body["rows"]), 2)


# --- what a figure is as of --------------------------------------------------------------


@pytest.mark.django_db
def test_changes_since_counts_what_can_move_a_credit(record) -> None:
    run = run_now()
    assert changes_since(run) == 0
    cy = record["cy"]
    touch_record(contact=cy, channel=Channel.objects.get(key="email"), actor=SYSTEM)
    assert changes_since(run) == 1
    # Marketing email consent moves no credit; analytics consent does.
    consent_record(contact=cy, purpose="marketing_email", granted=True, source="form", actor=SYSTEM)
    assert changes_since(run) == 1
    consent_record(contact=cy, purpose="analytics", granted=False, source="form", actor=SYSTEM)
    assert changes_since(run) == 2
    _won(record, "400.00")  # a deal, its member and its sale
    assert changes_since(run) == 5
    ruleset = services.ruleset_create(
        name="v1", points={}, mql_threshold=10, sla_hours=24, lookback_days=30, actor=SYSTEM
    )
    assert changes_since(run) == 5  # a draft changes nothing
    services.ruleset_activate(ruleset=ruleset, actor=SYSTEM)
    assert changes_since(run) == 6
    assert changes_since(run_now()) == 0


@pytest.mark.django_db
def test_the_report_says_which_run_it_is_as_of_and_the_changes_since(
    record, api_client_for, users
) -> None:
    run = run_now()
    assert run.finished_at is not None
    client = api_client_for(users[Role.MARKETER])
    body = client.get("/api/v1/reports/attribution/").json()
    assert body["run"] == {
        "id": run.pk,
        "finished_at": run.finished_at.isoformat().replace("+00:00", "Z"),
    }
    assert body["changes_since"] == 0
    touch_record(contact=record["bo"], channel=Channel.objects.get(key="web"), actor=SYSTEM)
    assert client.get("/api/v1/reports/attribution/").json()["changes_since"] == 1


# --- the debounced run ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_follows_changes_at_most_once_per_refresh_interval(record, settings) -> None:
    settings.ATTRIBUTION_REFRESH_MINUTES = 2
    first = run_now()
    later = timezone.now() + 3 * MINUTE
    assert attribution_freshen(now=later) is None  # nothing changed
    sale = _won(record, "400.00")
    # Too soon after the last run: the change waits, with any others that come.
    assert attribution_freshen(now=timezone.now()) is None
    fresh = attribution_freshen(now=later)
    assert fresh is not None and fresh.status == RunStatus.COMPLETE and fresh.pk > first.pk
    assert fresh.trigger == "fresh"
    assert AttributionCredit.objects.filter(run=fresh, sale_event_id=sale).exists()
    assert attribution_freshen(now=later + 3 * MINUTE) is None  # nothing since


@pytest.mark.django_db
def test_a_run_left_queued_is_carried_out_by_the_periodic_job(record, settings) -> None:
    settings.ATTRIBUTION_REFRESH_MINUTES = 2
    queued, _ = run_request(trigger="api")  # its task never reached a worker
    assert attribution_freshen(now=timezone.now()) is None  # its process may still take it
    done = attribution_freshen(now=timezone.now() + 3 * MINUTE)
    assert done is not None and done.pk == queued.pk and done.status == RunStatus.COMPLETE


# --- the embedded default: nothing but the web server -----------------------------------------


@pytest.fixture
def web_runs_periodic_jobs(settings) -> Any:
    settings.PERIODIC_IN_WEB = True
    settings.PERIODIC_CHECK_SECONDS = 0
    settings.ATTRIBUTION_REFRESH_MINUTES = 2
    yield
    assert background_wait(timeout=120), "background work still running"


def _request_and_wait(client: Client) -> None:
    """Any request: after its response the web process runs whatever periodic job is due."""
    # A check still running (after an earlier request) would take this request's turn.
    assert background_wait(timeout=120)
    assert client.get("/api/v1/health/").status_code == 200
    assert background_wait(timeout=120)


@pytest.mark.django_db(transaction=True)
def test_a_new_won_sale_reaches_attribution_with_no_worker_and_no_manual_run(
    record, users, api_client_for, web_runs_periodic_jobs
) -> None:
    before = run_now()
    web = Client()
    _request_and_wait(web)  # the web process's first look at the schedule starts its clocks
    reader = api_client_for(users[Role.MANAGER])
    deal = reader.post(
        "/api/v1/deals/",
        {
            "name": "Expansion of Acme",
            "organization": record["ada"].organization_id,
            "contacts": [{"contact": record["ada"].pk, "role": "champion"}],
            "amount": "400.00",
        },
        format="json",
    )
    assert deal.status_code == 201, deal.content
    sale = reader.post(
        f"/api/v1/deals/{deal.json()['id']}/sale-events/",
        {"kind": "won", "amount": "400.00"},
        format="json",
    )
    assert sale.status_code == 201, sale.content
    body, total = _attributed_total(reader)
    assert body["run"]["id"] == before.pk and body["changes_since"] >= 1
    assert total == pytest.approx(1000.0, abs=0.02)

    with time_machine.travel(timezone.now() + 3 * MINUTE, tick=True):
        _request_and_wait(web)
    body, total = _attributed_total(reader)
    assert body["run"]["id"] > before.pk and body["changes_since"] == 0
    assert total == pytest.approx(1400.0, abs=0.02)
    assert AttributionRun.objects.get(pk=body["run"]["id"]).trigger == "fresh"


@pytest.mark.django_db(transaction=True)
def test_overdue_handoffs_expire_with_no_worker(web_runs_periodic_jobs) -> None:
    from tests.factories import contact_make

    services.ruleset_activate(
        ruleset=services.ruleset_create(
            name="v1", points={}, mql_threshold=1, sla_hours=1, actor=SYSTEM
        ),
        actor=SYSTEM,
    )
    person = contact_make()
    consent_record(
        contact=person, purpose="sales_contact", granted=True, source="form", actor=SYSTEM
    )
    handoff = services.handoff_create(
        contact=person, actor=SYSTEM, occurred_at=timezone.now() - timedelta(minutes=50)
    )
    web = Client()
    _request_and_wait(web)
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.PENDING
    # Past its SLA, and the expiry job's next slot: a request is all it takes.
    with time_machine.travel(timezone.now() + 15 * MINUTE, tick=True):
        _request_and_wait(web)
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.EXPIRED


@pytest.mark.django_db
def test_no_periodic_work_in_the_web_process_when_it_is_turned_off(record, settings) -> None:
    from leadrecord.models import PeriodicClaim

    settings.PERIODIC_IN_WEB = False
    Client().get("/api/v1/health/")
    assert background_wait(timeout=10)
    assert not PeriodicClaim.objects.exists()


# --- pages: the figures' freshness, Recompute now and its progress ------------------------------


@pytest.mark.django_db
def test_every_attribution_figure_says_what_run_it_is_as_of(record, users) -> None:
    run = run_now()
    touch_record(contact=record["cy"], channel=Channel.objects.get(key="web"), actor=SYSTEM)
    manager = Client()
    manager.force_login(users[Role.MANAGER])
    page = manager.get("/reports/manager/").content.decode()
    finished = timezone.localtime(run.finished_at).strftime("%Y-%m-%d %H:%M")
    line = f"As of run #{run.pk}, finished at {finished}"
    # Attribution, the reconciliation, the models side by side and campaign ROI.
    assert page.count(line) == 4
    assert "1 change since." in page
    assert page.count("Recompute now") == 1
    marketer = Client()
    marketer.force_login(users[Role.MARKETER])
    page = marketer.get("/reports/marketing/").content.decode()
    assert page.count(line) == 2 and "Recompute now" not in page


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP, Role.PRIVACY_OFFICER])
@pytest.mark.django_db
def test_only_managers_recompute(users, role) -> None:
    client = Client()
    client.force_login(users[role])
    assert client.post("/reports/attribution/recompute/").status_code == 403
    assert not AttributionRun.objects.exists()


@pytest.mark.django_db
def test_recompute_is_a_post_and_needs_a_login(users) -> None:
    assert Client().post("/reports/attribution/recompute/").status_code == 302  # to log in
    manager = Client()
    manager.force_login(users[Role.MANAGER])
    assert manager.get("/reports/attribution/recompute/").status_code == 405
    assert not AttributionRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_recompute_now_shows_the_run_progress_until_it_is_done(record, users) -> None:
    manager = Client()
    manager.force_login(users[Role.MANAGER])
    response = manager.post("/reports/attribution/recompute/")
    assert response.status_code == 302
    run = AttributionRun.objects.get()
    assert response["Location"] == f"/reports/attribution/runs/{run.pk}/"
    assert run.trigger == "page" and run.requested_by == users[Role.MANAGER]
    # With no broker the run goes on in the background, the request answered at once.
    assert background_wait(timeout=120)
    page = manager.get(response["Location"]).content.decode()
    assert 'data-run-status="complete"' in page and 'http-equiv="refresh"' not in page
    assert "1 conversion and" in page


@pytest.mark.django_db
def test_an_unfinished_run_page_reloads_itself(users) -> None:
    run, _ = run_request(trigger="api")
    reader = Client()
    reader.force_login(users[Role.SALES_REP])
    page = reader.get(f"/reports/attribution/runs/{run.pk}/").content.decode()
    assert 'data-run-status="queued"' in page and 'http-equiv="refresh"' in page
    assert reader.get("/reports/attribution/runs/999999/").status_code == 404
    outsider = Client()
    outsider.force_login(users[Role.PRIVACY_OFFICER])
    assert outsider.get(f"/reports/attribution/runs/{run.pk}/").status_code == 403


# --- with a broker: Celery beat and a real worker ------------------------------------------------


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_new_won_sale_reaches_attribution_through_beat_and_a_real_worker(
    record, users, api_client_for, tmp_path
) -> None:
    import time

    from ..workers import celery_beat_process, celery_worker_process

    before = run_now()
    sale = _won(record, "400.00")
    reader = api_client_for(users[Role.MANAGER])
    body, total = _attributed_total(reader)
    assert body["run"]["id"] == before.pk and total == pytest.approx(1000.0, abs=0.02)
    # The product's schedule, checked every second, and no wait after the last run: the
    # same path as in production, only quicker.
    quick = {
        "LEADRECORD_ATTRIBUTION_CHECK_SECONDS": "1",
        "LEADRECORD_ATTRIBUTION_REFRESH_MINUTES": "0",
    }
    with (
        celery_worker_process(env=quick),
        celery_beat_process(tmp_path / "beat-schedule", env=quick),
    ):
        deadline = time.monotonic() + 90
        while not AttributionCredit.objects.filter(
            sale_event_id=sale, run__status=RunStatus.COMPLETE
        ).exists():
            assert time.monotonic() < deadline, "no run credited the sale within 90 s"
            time.sleep(0.2)
    body, total = _attributed_total(reader)
    assert body["run"]["id"] > before.pk
    assert total == pytest.approx(1400.0, abs=0.02)
    assert AttributionRun.objects.get(pk=body["run"]["id"]).trigger == "fresh"


@pytest.mark.django_db
def test_recompute_pressed_twice_joins_the_run_in_flight(users) -> None:
    manager = Client()
    manager.force_login(users[Role.MANAGER])
    first = manager.post("/reports/attribution/recompute/")
    second = manager.post("/reports/attribution/recompute/")
    assert first["Location"] == second["Location"]
    assert AttributionRun.objects.count() == 1
