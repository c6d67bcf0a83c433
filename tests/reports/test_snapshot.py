"""A reader's snapshot on PostgreSQL: one read-only REPEATABLE READ transaction, whose
characteristics are sent with its first query, and the connection as it was afterwards."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, Touch
from contacts.services import contact_merge
from leadrecord.ledger import Actor, ledger_head_seq
from reports.aggregates import people_aggregates_update, people_refresh_latest
from reports.metrics_people import changes_since_refresh
from reports.snapshot import consistent_read, snapshot_heads, snapshot_open
from tests.factories import contact_make

from .conftest import DAY, touch

SYSTEM = Actor.system("test")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _characteristics() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('transaction_isolation'), "
            "current_setting('transaction_read_only')"
        )
        return cursor.fetchone()


def test_a_snapshot_is_read_only_and_repeatable_read_and_then_the_connection_is_as_before():
    before = _characteristics()
    assert before == ("read committed", "off")
    assert not snapshot_open()
    with consistent_read():
        assert snapshot_open()
        with CaptureQueriesContext(connection) as queries:
            assert _characteristics() == ("repeatable read", "on")
        # With the first query, not a round trip of its own.
        assert len(queries.captured_queries) == 1
        assert queries.captured_queries[0]["sql"].startswith("SET TRANSACTION")
        with pytest.raises(Exception, match="read-only"), connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE scratch (id int)")
    assert _characteristics() == before
    with pytest.raises(ZeroDivisionError), consistent_read():
        _ = 1 / 0
    assert _characteristics() == before
    with CaptureQueriesContext(connection) as queries:
        with consistent_read():
            pass
        _characteristics()
    # Nothing sent to set or reset the connection's own characteristics.
    assert [query["sql"] for query in queries.captured_queries if "SET" in query["sql"]] == []


def test_a_snapshot_whose_first_read_is_a_server_side_cursor_is_one_too():
    contact_make()
    with consistent_read():
        assert [row.pk for row in Touch.objects.iterator(chunk_size=10)] == []
        assert list(Contact.objects.values_list("pk", flat=True).iterator(chunk_size=10))
        assert _characteristics() == ("repeatable read", "on")
    assert _characteristics() == ("read committed", "off")


def test_the_state_read_in_a_snapshot_carries_the_heads_and_the_merges_since_it():
    """One query opens a reader's snapshot: the aggregates' state, the merges since it and
    the ledger head and highest touch id, each as their own reads would give them."""
    keep, merge, other = contact_make(), contact_make(), contact_make()
    people_aggregates_update()
    contact_merge(keep=keep, merge=merge, actor=SYSTEM)
    touch(other, "web", DAY)
    with consistent_read():
        with CaptureQueriesContext(connection) as queries:
            state = people_refresh_latest()
            heads = snapshot_heads()
            changes = changes_since_refresh()
        assert len(queries.captured_queries) == 1
    assert state is not None
    assert changes.merged == {merge.pk} and changes.survivors == {keep.pk}
    # Outside a snapshot each is its own read; nothing was written since.
    assert heads == snapshot_heads() == (ledger_head_seq(), Touch.objects.latest("id").pk)
    assert people_refresh_latest() == state
    assert not hasattr(people_refresh_latest(), "merges_since")
