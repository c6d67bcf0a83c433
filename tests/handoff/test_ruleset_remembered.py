"""A transaction that asks for it reads the active ruleset once under the ledger lock, and
sees at once a ruleset it activates itself."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from handoff import services
from handoff.models import Ruleset
from handoff.selectors import ruleset_active, ruleset_active_remember
from leadrecord.ledger import Actor, ledger_lock

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
READ = "FROM handoff_ruleset WHERE status"


def _reads(queries: CaptureQueriesContext) -> int:
    return sum(READ in query["sql"] for query in queries.captured_queries)


def _ruleset(name: str, threshold: int) -> Ruleset:
    return services.ruleset_create(
        name=name, points={"kind:form": 1}, mql_threshold=threshold, sla_hours=24, actor=SYSTEM
    )


def test_remembered_under_the_lock_it_is_read_once():
    first = _ruleset("first", 10)
    services.ruleset_activate(ruleset=first, actor=SYSTEM)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        ruleset_active_remember()
        ledger_lock()
        assert ruleset_active() == first
        assert ruleset_active() == first
        assert ruleset_active() == first
    assert _reads(queries) == 1


@pytest.mark.django_db(transaction=True)
def test_without_the_lock_or_unasked_it_is_read_every_time():
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        ruleset_active_remember()
        ruleset_active()
        ruleset_active()  # not under the lock: another writer may activate one meanwhile
    with CaptureQueriesContext(connection) as unasked, transaction.atomic():
        ledger_lock()
        ruleset_active()
        ruleset_active()
    assert _reads(queries) == 2
    assert _reads(unasked) == 2


def test_a_ruleset_activated_in_the_same_transaction_is_seen_at_once():
    first, second = _ruleset("first", 10), _ruleset("second", 20)
    services.ruleset_activate(ruleset=first, actor=SYSTEM)
    with transaction.atomic():
        ruleset_active_remember()
        ledger_lock()
        assert ruleset_active() == first
        services.ruleset_activate(ruleset=second, actor=SYSTEM)
        active = ruleset_active()
        assert active == second
        assert active is not None and active.mql_threshold == 20
    assert ruleset_active() == second


def test_a_rolled_back_activation_leaves_the_ruleset_before_it():
    first, second = _ruleset("first", 10), _ruleset("second", 20)
    services.ruleset_activate(ruleset=first, actor=SYSTEM)
    with transaction.atomic():
        ruleset_active_remember()
        ledger_lock()
        assert ruleset_active() == first
        with pytest.raises(ValueError, match="undo"), transaction.atomic():
            services.ruleset_activate(ruleset=second, actor=SYSTEM)
            assert ruleset_active() == second
            raise ValueError("undo")
        assert ruleset_active() == first
