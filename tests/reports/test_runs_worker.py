"""Attribution runs on a real Celery worker and PostgreSQL: end to end, and killed midway."""

import contextlib
import os
import signal
import subprocess
import time

import psycopg2
import pytest
from django.db import connection
from rest_framework.test import APIClient

from leadrecord.roles import Role
from reports.models import AttributionCredit, AttributionRun, RunStatus
from reports.runs import RUN_LOCK_KEY, run_execute, run_request

from .. import workers
from ..workers import celery_worker_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def _wait_for(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _status(run_id: int) -> str:
    return str(AttributionRun.objects.values_list("status", flat=True).get(pk=run_id))


def _blocked_on_credits() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            # This database's only: parallel test runs share the server.
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND query ILIKE %s",
            # The run has loaded its own table and waits to attach it as its partition.
            ["SELECT reports_credit_run_table_attach(%"],
        )
        return bool(cursor.fetchone()[0])


def _run_lock_held() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        # This database's only: the server may hold other test runs' locks.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return bool(cursor.fetchone()[0])


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool processes: no goodbye, no cleanup."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for pid in [process.pid, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_a_run_requested_by_api_completes_on_a_real_worker(record, users):
    client = APIClient()
    client.force_authenticate(users[Role.MANAGER])
    with celery_worker_process():
        started = client.post("/api/v1/attribution/runs/")
        assert started.status_code == 202
        run_id = started.json()["id"]
        _wait_for(lambda: _status(run_id) in (RunStatus.COMPLETE, RunStatus.FAILED), "the run")
    run = AttributionRun.objects.get(pk=run_id)
    assert run.status == RunStatus.COMPLETE, run.error
    assert run.conversions == 1
    report = client.get("/api/v1/reports/attribution/", {"model": "last_touch"}).json()
    assert report["run"]["id"] == run_id and report["rows"][0]["key"] == "sales_call"


def test_a_run_killed_midway_leaves_the_previous_results_served(record, users):
    first, _ = run_request(trigger="command")
    previous = run_execute(run_id=first.pk)
    assert previous.status == RunStatus.COMPLETE
    served_rows = AttributionCredit.objects.filter(run=previous).count()
    client = APIClient()
    client.force_authenticate(users[Role.MANAGER])

    # Another session holds the credits table, so the run stops inside its
    # writing transaction; the API call goes through the test's own connection.
    holder = psycopg2.connect(workers.test_database_url())
    try:
        with celery_worker_process() as worker, holder.cursor() as cursor:
            cursor.execute("LOCK TABLE reports_attributioncredit IN SHARE MODE")
            doomed = client.post("/api/v1/attribution/runs/").json()["id"]
            _wait_for(_blocked_on_credits, "the run to reach its credits")
            assert _status(doomed) == RunStatus.RUNNING
            _kill_tree(worker)
            holder.rollback()
    finally:
        holder.close()

    # Readers still get the previous complete run, whole.
    _wait_for(lambda: not _run_lock_held(), "the killed run's session to end")
    report = client.get("/api/v1/reports/attribution/", {"model": "linear"}).json()
    assert report["run"]["id"] == previous.pk
    assert sum(row["credit"] for row in report["rows"]) == pytest.approx(1000.0, abs=0.02)
    assert not AttributionCredit.objects.filter(run_id=doomed).exists()
    assert AttributionCredit.objects.filter(run=previous).count() == served_rows

    # The next run finds the interrupted one, marks it failed, and takes its place.
    again, created = run_request(trigger="command")
    assert not created and again.pk == doomed  # the interrupted run is still "in flight"
    fresh = run_execute(run_id=again.pk)
    assert _status(doomed) == RunStatus.FAILED
    assert "Interrupted" in AttributionRun.objects.get(pk=doomed).error
    # The killed run's own table, loaded but never attached, is gone with it.
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"reports_attributioncredit_run_{doomed}"])
        assert cursor.fetchone()[0] is None
    assert fresh.status == RunStatus.COMPLETE and fresh.pk > doomed
    report = client.get("/api/v1/reports/attribution/", {"model": "linear"}).json()
    assert report["run"]["id"] == fresh.pk


def test_two_runs_at_once_do_not_both_write(record):
    """The lock is taken: the second does nothing (and does not fail the first)."""
    first, _ = run_request(trigger="command")
    # Another process holds the run lock, as a run in progress would.
    holder = psycopg2.connect(workers.test_database_url())
    try:
        with holder.cursor() as other:
            other.execute("SELECT pg_advisory_lock(%s)", [RUN_LOCK_KEY])
        refused = run_execute(run_id=first.pk)
    finally:
        holder.close()
    # A duplicate delivery while the lock is held leaves the run to its holder.
    assert refused.status == RunStatus.QUEUED
    assert not AttributionCredit.objects.exists()
