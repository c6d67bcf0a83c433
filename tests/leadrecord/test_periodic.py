"""Periodic jobs without a broker: every due beat entry runs once, whichever process finds it."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from celery import shared_task
from celery.schedules import crontab, schedule
from django.core.management import call_command
from django.db import connections

from leadrecord.models import PeriodicClaim
from leadrecord.periodic import due_slot, periodic_run_due

RAN: list[str] = []


@shared_task(name="tests.periodic_probe")
def periodic_probe(label: str = "probe") -> str:
    RAN.append(label)
    return label


@shared_task(name="tests.periodic_broken")
def periodic_broken() -> None:
    raise RuntimeError("the job broke")


@pytest.fixture(autouse=True)
def _forget_runs() -> None:
    RAN.clear()


T0 = datetime(2026, 12, 1, 9, 0, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_an_interval_is_due_once_per_interval_and_missed_ones_are_not_replayed() -> None:
    every = schedule(timedelta(minutes=5))
    assert due_slot(every, T0, T0 + 4 * MINUTE) is None
    assert due_slot(every, T0, T0 + 5 * MINUTE) == T0 + 5 * MINUTE
    # Three intervals missed: one run, for the latest.
    assert due_slot(every, T0, T0 + 17 * MINUTE) == T0 + 15 * MINUTE


def test_a_crontab_is_due_at_its_latest_scheduled_moment() -> None:
    nightly = crontab(hour=2, minute=30)
    last = datetime(2026, 12, 1, 2, 30, tzinfo=UTC)
    assert due_slot(nightly, last, datetime(2026, 12, 2, 2, 29, tzinfo=UTC)) is None
    assert due_slot(nightly, last, datetime(2026, 12, 2, 2, 31, tzinfo=UTC)) == datetime(
        2026, 12, 2, 2, 30, tzinfo=UTC
    )
    # Down for three nights: the last night's run only.
    assert due_slot(nightly, last, datetime(2026, 12, 4, 9, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 2, 30, tzinfo=UTC
    )


PROBE = {"probe-every-five": {"task": "tests.periodic_probe", "schedule": 5 * 60}}


@pytest.mark.django_db
def test_first_sight_starts_the_clock_then_each_due_slot_runs_once() -> None:
    first = periodic_run_due(now=T0, schedule=PROBE)
    assert [(o.job, o.outcome) for o in first] == [("probe-every-five", "baseline")]
    assert RAN == []
    assert periodic_run_due(now=T0 + 4 * MINUTE, schedule=PROBE) == []
    ran = periodic_run_due(now=T0 + 5 * MINUTE, schedule=PROBE)
    assert [(o.job, o.slot, o.outcome) for o in ran] == [
        ("probe-every-five", T0 + 5 * MINUTE, "ok")
    ]
    assert RAN == ["probe"]
    # Asked again within the same slot (another request, another process): nothing.
    assert periodic_run_due(now=T0 + 6 * MINUTE, schedule=PROBE) == []
    assert RAN == ["probe"]
    claim = PeriodicClaim.objects.get(job="probe-every-five", slot=T0 + 5 * MINUTE)
    assert claim.outcome == "ok" and claim.finished_at is not None
    # A week on, the old claims are gone; the latest is kept.
    periodic_run_due(now=T0 + timedelta(days=8), schedule=PROBE)
    assert list(PeriodicClaim.objects.values_list("slot", flat=True)) == [T0 + timedelta(days=8)]


@pytest.mark.django_db
def test_any_entry_is_picked_up_with_its_arguments_and_a_failure_stops_no_other() -> None:
    entries = {
        # Added by someone else, named as they like: read generically.
        "ledger-checkpoint": {
            "task": "tests.periodic_probe",
            "schedule": crontab(minute=0),
            "args": ("checkpoint",),
        },
        "broken": {"task": "tests.periodic_broken", "schedule": timedelta(minutes=1)},
        "unknown": {"task": "tests.no_such_task", "schedule": 60.0},
    }
    periodic_run_due(now=T0, schedule=entries)
    outcomes = periodic_run_due(now=T0 + 60 * MINUTE, schedule=entries)
    by_job = {o.job: o for o in outcomes}
    assert by_job["ledger-checkpoint"].outcome == "ok"
    assert by_job["ledger-checkpoint"].slot == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert RAN == ["checkpoint"]
    assert by_job["broken"].outcome == "failed" and "the job broke" in by_job["broken"].error
    assert by_job["unknown"].outcome == "failed"
    assert PeriodicClaim.objects.filter(outcome="failed").count() == 2


@pytest.mark.django_db
def test_the_product_schedule_expires_overdue_handoffs_and_follows_the_record(settings) -> None:
    jobs = set(settings.CELERY_BEAT_SCHEDULE)
    assert {"expire-handoffs-past-sla", "attribution-fresh", "attribution-nightly"} <= jobs
    periodic_run_due(now=T0)
    assert set(PeriodicClaim.objects.values_list("job", flat=True)) == jobs
    ran = {o.job: o.outcome for o in periodic_run_due(now=T0 + 5 * MINUTE)}
    assert ran == {
        "expire-handoffs-past-sla": "ok",
        "attribution-fresh": "ok",
        "webhooks-deliver": "ok",  # retries fall due between changes
        "report-rollups": "ok",
    }


@pytest.mark.django_db
def test_run_periodic_runs_what_is_due(capsys) -> None:
    call_command("run_periodic")
    assert "baseline" in capsys.readouterr().out
    call_command("run_periodic")
    assert "nothing due" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_runners_claim_each_slot_once() -> None:
    periodic_run_due(now=T0, schedule=PROBE)
    racers = 8
    for round_number in range(1, 4):
        moment = T0 + 5 * MINUTE * round_number
        start = threading.Barrier(racers)
        outcomes: list[str] = []

        def race(
            moment: datetime = moment,
            start: threading.Barrier = start,
            outcomes: list[str] = outcomes,
        ) -> None:
            try:
                # Connected first, so all of them read the schedule's state together.
                connections["default"].ensure_connection()
                start.wait()
                outcomes.extend(o.outcome for o in periodic_run_due(now=moment, schedule=PROBE))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert outcomes == ["ok"], f"round {round_number}"
    assert RAN == ["probe"] * 3
    assert PeriodicClaim.objects.filter(job="probe-every-five", outcome="ok").count() == 3
