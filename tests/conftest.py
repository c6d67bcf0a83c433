from collections.abc import Callable, Iterator

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` are skipped when the suite runs on SQLite."""
    from django.conf import settings

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
