import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth.models import User
from django.db import connection
from knox.models import AuthToken
from rest_framework.test import APIClient

from leadrecord.ledger_guard import ledger_guard_install, ledger_guard_remove
from leadrecord.roles import Role

from .factories import UserFactory

_DB_FIXTURES = {"db", "transactional_db", "live_server", "django_db_reset_sequences"}
_TRANSACTIONAL_FIXTURES = {"transactional_db", "live_server", "django_db_reset_sequences"}


# The modules that run again on the embedded SQLite database (make run's default): those
# of code with a SQLite branch of its own (the ledger and its guard, bulk inserts and
# ingestion, erasure, token lookup, stored dates, backups, the report aggregates and
# runs) and of the embedded setup itself (commands, seed_demo, the pages on the demo
# data). Everything else is database-neutral and runs once, on PostgreSQL.
EMBEDDED_MODULES = {
    "buyers/test_forms.py",
    "buyers/test_forms_remembered.py",
    "buyers/test_portal.py",
    "buyers/test_visits.py",
    "contacts/test_erasure.py",
    "events/test_events.py",
    "events/test_touch_import.py",
    "handoff/test_organization_pages.py",
    "demo/test_buyers.py",
    "demo/test_people.py",
    "demo/test_pipeline.py",
    "leadrecord/test_api_tokens.py",
    "leadrecord/test_remembered.py",
    "leadrecord/test_backups.py",
    "leadrecord/test_commands.py",
    "leadrecord/test_demo_pages.py",
    "leadrecord/test_ledger.py",
    "leadrecord/test_ledger_once.py",
    "leadrecord/test_stored_dates.py",
    "reports/test_aggregates.py",
    "reports/test_change_counts.py",
    "reports/test_counting.py",
    "reports/test_metrics.py",
    "reports/test_runs.py",
    "webhooks/test_delivery.py",
    "webhooks/test_outbox.py",
}
# How `--dist loadscope` hands the tests to the xdist workers (see pytest_xdist_make_scheduler).
# The modules with tests marked `worker` (they start a Celery worker) go to one worker,
# in turn: one of them restarts Redis under load.
REDIS_MODULES = {
    "events/test_touch_import.py",
    "handoff/test_worker.py",
    "leadrecord/test_tasks.py",
    "reports/test_faults.py",
    "reports/test_freshness.py",
    "reports/test_runs_chord.py",
    "reports/test_runs_worker.py",
    "webhooks/test_worker.py",
}
# Each test of these goes wherever a worker is free: each runs long enough that the
# worker's own copy of the module's data costs less than running them in turn.
SPREAD_MODULES = {"security/test_schema_fuzz.py"}
TESTS = Path(__file__).resolve().parent


def _module(item: pytest.Item) -> str:
    """The test's module, relative to tests/ (``reports/test_runs.py``)."""
    return Path(os.path.relpath(item.path, TESTS)).as_posix()


def pytest_configure(config: pytest.Config) -> None:
    _broker_per_xdist_worker()


def _broker_per_xdist_worker() -> None:
    """Each pytest-xdist worker its own Redis database as the Celery broker.

    Workers run in parallel, each against its own test database; a Celery worker
    one of them starts must never take a task another one sent. The Redis database
    number is the given one plus the xdist worker's number; the environment
    carries it to the processes the tests start (Celery workers, gunicorn, beat).
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not worker.startswith("gw") or not broker.startswith("redis"):
        return
    from django.conf import settings

    from leadrecord import celery_app

    parts = urlsplit(broker)
    number = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    url = urlunsplit(parts._replace(path=f"/{number}"))
    os.environ["CELERY_BROKER_URL"] = url
    settings.CELERY_BROKER_URL = url
    celery_app.conf.broker_url = url
    if broker == settings.CELERY_RESULT_BACKEND:
        os.environ["CELERY_RESULT_BACKEND"] = url
        settings.CELERY_RESULT_BACKEND = url
        celery_app.conf.result_backend = url


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadscope`` by module, as pytest-xdist does it (a module's data written
    once per module is written once), with REDIS_MODULES as one unit and each test of
    SPREAD_MODULES a unit of its own. Other ``--dist`` modes are xdist's own."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            module = Path(os.path.relpath(config.rootpath / path, TESTS)).as_posix()
            if module in REDIS_MODULES:
                return "redis"
            if module in SPREAD_MODULES:
                return nodeid
            return path

    return ByModule(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks ``embedded``; on SQLite, skips the tests marked ``postgres``."""
    from django.conf import settings

    for item in items:
        if _module(item) in EMBEDDED_MODULES:
            item.add_marker(pytest.mark.embedded)
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _ledger_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep the ledger append-only in every test, except for the flush.

    Transactional tests end with a flush (TRUNCATE or DELETE of every table),
    which the append-only triggers would refuse; the guard is lifted just for
    it and put back at the start of the next test that uses the database.
    """
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    transactional = bool(names & _TRANSACTIONAL_FIXTURES) or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not (marker or names & _DB_FIXTURES):
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    ledger_guard_install(connection)
    yield
    if transactional:
        ledger_guard_remove(connection)


@pytest.fixture(autouse=True)
def _report_reads_forgotten() -> None:
    """Each test's database is new: what a process kept of the last one's touches goes,
    and of its states and runs."""
    from reports.per_state import per_state_forget
    from reports.since_state import since_state_forget

    since_state_forget()
    per_state_forget()


@pytest.fixture(autouse=True)
def _tasks_in_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tasks run in process unless the test starts a real worker (marker ``worker``).

    The suite's environment names a Redis broker for the worker tests; other
    tests must not leave messages there that no worker will ever take.
    """
    from leadrecord import celery_app

    eager = request.node.get_closest_marker("worker") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    def make(role: str | None = None, **kwargs: object) -> object:
        return UserFactory(role=role, **kwargs)

    return make


@pytest.fixture
def users(db: None) -> dict[str, object]:
    """One user per role, keyed by role name."""
    return {role: UserFactory(username=f"the-{role}", role=role) for role in Role.values}


@pytest.fixture
def api_client_for(db: None) -> Callable[[User], APIClient]:
    """An API client authenticated with the user's token, as other systems call."""

    def make(user: User) -> APIClient:
        client = APIClient()
        # A new token per client, straight from knox (no ledger entry, unlike
        # issue_token), so tests count only the entries their own actions write.
        _, key = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make
