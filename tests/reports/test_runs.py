"""Attribution runs over the record: what they read, what they write, and how they swap in."""

from collections import defaultdict
from datetime import timedelta
from typing import Any, cast

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Channel
from contacts.services import consent_record
from handoff import services
from leadrecord.ledger import Actor, ledger_verify
from leadrecord.models import LedgerEntry
from leadrecord.roles import Role
from reports.models import AttributionCredit, AttributionModel, AttributionRun, RunStatus
from reports.run_input import run_input_read
from reports.runs import run_execute, run_request
from reports.tasks import attribution_nightly_task

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
DAY = timedelta(days=1)


def credits_by(run: AttributionRun, model: str) -> dict[str, float]:
    keys = dict(Channel.objects.values_list("id", "key"))
    sums: dict[str, float] = defaultdict(float)
    for channel_id, credit in AttributionCredit.objects.filter(run=run, model=model).values_list(
        "channel_id", "credit"
    ):
        sums[keys[channel_id]] += credit
    return {key: round(value, 6) for key, value in sums.items()}


def run_now() -> AttributionRun:
    run, _ = run_request(trigger="command")
    return run_execute(run_id=run.pk)


def test_a_run_credits_every_model_and_the_heuristics_as_computed_by_hand(record):
    run = run_now()
    assert run.status == RunStatus.COMPLETE, run.error
    assert (run.conversions, run.touches) == (1, 5)
    assert sorted(run.model_names) == sorted(AttributionModel.values)
    assert credits_by(run, "first_touch") == {"web": 1000.0}
    assert credits_by(run, "last_touch") == {"sales_call": 1000.0}
    third = round(1000 / 3, 6)
    assert credits_by(run, "linear") == pytest.approx(
        {"web": third, "email": third, "sales_call": third}
    )
    assert credits_by(run, "position_based") == pytest.approx(
        {"web": 400.0, "email": 200.0, "sales_call": 400.0}
    )
    for model in AttributionModel.values:
        assert sum(credits_by(run, model).values()) == pytest.approx(1000.0), model
    assert LedgerEntry.objects.filter(action="attribution.run").count() == 1
    assert ledger_verify().ok


def test_running_again_on_the_same_record_gives_identical_credits(record):
    first, second = run_now(), run_now()
    assert first.input_digest == second.input_digest != ""

    def rows(run: AttributionRun) -> list[tuple[Any, ...]]:
        return sorted(
            AttributionCredit.objects.filter(run=run).values_list(
                "model", "sale_event_id", "channel_id", "campaign_id", "credit"
            )
        )

    assert rows(first) == rows(second)


def test_people_who_withdrew_analytics_consent_are_left_out_of_paths(record):
    consent_record(
        contact=record["bo"], purpose="analytics", granted=False, source="preferences", actor=SYSTEM
    )
    data = run_input_read(lookback_days=365)
    sales_call = Channel.objects.get(key="sales_call").pk
    assert sales_call not in data.touch_channel.tolist()
    run = run_now()
    assert credits_by(run, "last_touch") == {"email": 1000.0}


def test_touches_outside_the_lookback_are_left_out(record):
    services.ruleset_activate(
        ruleset=services.ruleset_create(
            name="short memory",
            points={},
            mql_threshold=10,
            sla_hours=24,
            lookback_days=20,
            actor=SYSTEM,
        ),
        actor=SYSTEM,
    )
    run = run_now()
    assert run.lookback_days == 20 and run.ruleset_version == 1
    # The web touch was 25 days before the sale: outside a 20-day lookback.
    assert credits_by(run, "first_touch") == {"email": 1000.0}


def test_a_failed_run_leaves_the_previous_one_served(record, api_client_for, users):
    good = run_now()
    AttributionRun.objects.create(status=RunStatus.RUNNING, created_at=timezone.now())
    # Under the run lock, a run found running was interrupted; the next run fails it
    # and completes afresh.
    retried = run_now()
    assert AttributionRun.objects.filter(status=RunStatus.FAILED).count() == 1
    assert retried.status == RunStatus.COMPLETE and retried.pk > good.pk
    report = api_client_for(users[Role.MANAGER]).get(
        "/api/v1/reports/attribution/", {"model": "first_touch"}
    )
    assert report.json()["run"]["id"] == retried.pk


def test_with_no_conversions_a_run_completes_empty():
    run = run_now()
    assert run.status == RunStatus.COMPLETE, run.error
    assert run.conversions == 0
    assert not AttributionCredit.objects.filter(run=run).exists()


def test_the_nightly_task_and_the_command_run_attribution(record, capsys):
    assert attribution_nightly_task.delay().get() == RunStatus.COMPLETE
    call_command("recompute_attribution")
    assert "complete: 1 conversions" in capsys.readouterr().out
    assert AttributionRun.objects.filter(status=RunStatus.COMPLETE).count() == 2
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["attribution-nightly"]["task"] == (
        "reports.attribution_nightly"
    )


# --- the API ----------------------------------------------------------------------


@pytest.fixture
def api(users: dict[str, Any], api_client_for: Any) -> Any:
    return lambda role: cast(APIClient, api_client_for(cast(User, users[role])))


def test_a_manager_starts_a_run_and_reads_it(record, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        started = api(Role.MANAGER).post("/api/v1/attribution/runs/")
    assert started.status_code == 202
    body = started.json()
    assert body["status"] in ("queued", "running", "complete")
    detail = api(Role.MARKETER).get(f"/api/v1/attribution/runs/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["status"] == "complete"  # tasks run in process in tests
    assert detail.json()["conversions"] == 1
    assert set(detail.json()["models"]) == set(AttributionModel.values)


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SALES_REP, Role.PRIVACY_OFFICER])
def test_only_managers_start_runs(api, role):
    assert api(role).post("/api/v1/attribution/runs/").status_code == 403
    assert not AttributionRun.objects.exists()


@pytest.mark.parametrize("role", [Role.PRIVACY_OFFICER, Role.INTEGRATION])
def test_reports_are_not_for_everyone(api, role):
    assert api(role).get("/api/v1/reports/attribution/").status_code == 403


def test_the_report_by_channel_campaign_and_team(record, api):
    run = run_now()
    reader = api(Role.SALES_REP)
    by_channel = reader.get("/api/v1/reports/attribution/", {"model": "last_touch"}).json()
    assert by_channel["run"]["id"] == run.pk
    assert by_channel["rows"] == [{"key": "sales_call", "credit": 1000.0, "conversions": 1.0}]
    by_team = reader.get(
        "/api/v1/reports/attribution/", {"model": "linear", "group_by": "team"}
    ).json()
    teams = {row["key"]: row["credit"] for row in by_team["rows"]}
    assert teams == pytest.approx({"marketing": 666.67, "sales": 333.33})
    won_day = (timezone.localtime() - 5 * DAY).date()
    before = reader.get(
        "/api/v1/reports/attribution/",
        {"model": "linear", "to": str(won_day - DAY)},
    ).json()
    assert before["rows"] == []
    that_day = reader.get(
        "/api/v1/reports/attribution/",
        {"model": "linear", "from": str(won_day), "to": str(won_day)},
    ).json()
    assert sum(row["credit"] for row in that_day["rows"]) == pytest.approx(1000.0, abs=0.02)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"model": "astrology"}, "model"),
        ({"group_by": "star_sign"}, "group_by"),
        ({"from": "last tuesday"}, "from"),
        ({"from": "2026-10-10", "to": "2026-10-01"}, "to"),
        ({"to": "2026-02-30"}, "to"),
    ],
)
def test_bad_report_queries_are_400s_naming_the_field(api, query, field):
    response = api(Role.MANAGER).get("/api/v1/reports/attribution/", query)
    assert response.status_code == 400
    assert field in {error["attr"] for error in response.json()["errors"]}


def test_before_any_run_the_report_is_empty(api):
    response = api(Role.MANAGER).get("/api/v1/reports/attribution/")
    assert response.status_code == 200
    assert response.json() == {
        "run": None,
        "model": "linear",
        "group_by": "channel",
        "changes_since": None,
        "rows": [],
    }
