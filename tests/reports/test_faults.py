"""Faults under load, the small version of bench/faults.py.

While a client posts batches of events through a real gunicorn, a gunicorn
worker is killed, Redis is stopped and started again (a ruleset is activated
while it is down), and the Celery worker is killed in the middle of an
attribution run. Afterwards every acknowledged event is stored exactly once,
the ledger verifies, and the latest complete attribution run is whole.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

import psycopg2
import pytest
import redis
from django.db.models import Sum
from knox.models import AuthToken

from contacts.models import Touch
from handoff.models import SaleEvent
from leadrecord.ledger import ledger_verify
from leadrecord.roles import Role
from reports.models import AttributionCredit, AttributionRun, RunStatus
from reports.runs import run_execute, run_request

from .. import workers
from ..servers import gunicorn_process
from ..workers import celery_worker_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]
BATCHES, PER_BATCH = 24, 100


def _batch(number: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "type": "touch",
                "source_system": "faults",
                "external_id": f"b{number}-e{n}",
                "occurred_at": "2026-10-01T12:00:00Z",
                "contact": {"email": f"buyer{n % 40}@faults.example"},
                "channel": "web",
                "kind": "visit",
            }
            for n in range(PER_BATCH)
        ]
    }


def _call(url: str, token: str, path: str, body: Any = None, timeout: float = 60) -> Any:
    request = urllib.request.Request(  # noqa: S310 -- a loopback URL the test built
        url + path,
        data=json.dumps(body).encode() if body is not None else b"",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


class Load(threading.Thread):
    """Posts the batches in order; a batch is retried until it is acknowledged."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.acknowledged: dict[int, dict[str, Any]] = {}
        self.retries = 0

    def run(self) -> None:
        for number in range(BATCHES):
            deadline = time.monotonic() + 60
            while number not in self.acknowledged:
                try:
                    self.acknowledged[number] = _call(
                        self.url, self.token, "/api/v1/events/", _batch(number)
                    )
                except (urllib.error.URLError, ConnectionError, OSError):
                    self.retries += 1
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.1)
            time.sleep(0.05)


def _wait_for(condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _redis_restart(port: int, down_while: Any) -> Any:
    """Stop Redis (no save), call ``down_while()``, start Redis again on the same port."""
    server = os.environ.get("LEADRECORD_TEST_REDIS_SERVER") or shutil.which("redis-server")
    assert server, "redis-server is needed"
    with contextlib.suppress(redis.ConnectionError):  # it may drop us as it goes down
        redis.Redis(port=port).shutdown(nosave=True)
    _wait_for(lambda: not _redis_up(port), "Redis to stop")
    try:
        return down_while()
    finally:
        subprocess.run(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--daemonize", "yes"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        _wait_for(lambda: _redis_up(port), "Redis to start")


def _redis_up(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.ConnectionError:
        return False


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(process.pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    for pid in [process.pid, *map(int, children)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    process.wait(timeout=30)


def _blocked_on_credits(cursor: Any) -> bool:
    cursor.execute(
        # This database's only: parallel test runs share the server.
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() "
        # The run has loaded its own table and waits to attach it as its partition.
        "AND query ILIKE 'SELECT reports_credit_run_table_attach(%%'"
    )
    return bool(cursor.fetchone()[0])


def test_faults_under_load_lose_nothing_and_keep_the_latest_run_whole(record, users):
    first, _ = run_request(trigger="command")
    assert run_execute(run_id=first.pk).status == RunStatus.COMPLETE
    integration = AuthToken.objects.create(user=users[Role.INTEGRATION])[1]
    manager = AuthToken.objects.create(user=users[Role.MANAGER])[1]
    redis_port = int(os.environ["LEADRECORD_TEST_REDIS_PORT"])
    watcher = psycopg2.connect(workers.test_database_url())
    watcher.autocommit = True
    holder = psycopg2.connect(workers.test_database_url())

    with gunicorn_process(workers=2) as server, celery_worker_process() as worker:
        load = Load(server.url, integration)
        load.start()
        _wait_for(lambda: len(load.acknowledged) >= 4, "the load to start")

        # 1. A gunicorn worker dies mid-load; its master starts another.
        os.kill(server.worker_pids()[0], signal.SIGKILL)

        # 2. Redis restarts; a ruleset activated meanwhile still rescores (in process).
        _wait_for(lambda: len(load.acknowledged) >= 8, "the load to go on")
        draft = _call(
            server.url,
            manager,
            "/api/v1/rulesets/",
            {"name": "during the outage", "points": {"channel:web": 1}, "mql_threshold": 500,
             "sla_hours": 24},
        )  # fmt: skip
        activated = _redis_restart(
            redis_port,
            lambda: _call(server.url, manager, f"/api/v1/rulesets/{draft['id']}/activate/"),
        )
        assert activated["status"] == "active"

        # 3. The Celery worker dies in the middle of an attribution run.
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE reports_attributioncredit IN SHARE MODE")
            doomed = _call(server.url, manager, "/api/v1/attribution/runs/")["id"]
            with watcher.cursor() as watching:
                _wait_for(lambda: _blocked_on_credits(watching), "the run to reach its credits")
            _kill_tree(worker)
            holder.rollback()

        load.join(timeout=120)
        assert len(load.acknowledged) == BATCHES, f"acknowledged {len(load.acknowledged)}"

        # Readers still get the previous run while the dead one is unfinished.
        assert AttributionRun.objects.get(pk=doomed).status == RunStatus.RUNNING
        with celery_worker_process():
            # The next request re-sends the unfinished run: the dead one is failed
            # and a fresh run takes its place.
            _wait_for(lambda: _advisory_locks(watcher) == 0, "the dead run's session to end", 30)
            _call(server.url, manager, "/api/v1/attribution/runs/")
            _wait_for(
                lambda: AttributionRun.objects.filter(
                    pk__gt=doomed, status=RunStatus.COMPLETE
                ).exists(),
                "a fresh complete run",
            )
    watcher.close()
    holder.close()

    # Every acknowledged event exactly once.
    stored = list(
        Touch.objects.filter(source_system="faults").values_list("external_id", flat=True)
    )
    assert len(stored) == len(set(stored)) == BATCHES * PER_BATCH
    for answer in load.acknowledged.values():
        assert answer["created"] + answer["duplicate"] == PER_BATCH
    assert ledger_verify().ok
    assert AttributionRun.objects.get(pk=doomed).status == RunStatus.FAILED
    latest = AttributionRun.objects.filter(status=RunStatus.COMPLETE).order_by("-id").first()
    assert latest is not None and latest.pk > doomed
    revenue = float(SaleEvent.objects.aggregate(total=Sum("amount"))["total"])
    sums: dict[str, float] = defaultdict(float)
    for model, credit in AttributionCredit.objects.filter(run=latest).values_list(
        "model", "credit"
    ):
        sums[model] += credit
    assert len(sums) == 8
    assert all(total == pytest.approx(revenue) for total in sums.values()), sums


def _advisory_locks(connection: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return int(cursor.fetchone()[0])
