"""The ledger lock and head, taken and read once per transaction (leadrecord.transaction_marks).

A transaction that appends several times takes the lock once and reads the head
once; a savepoint rolled back forgets what it took and appended, so the next
append relocks and chains onto the head as it then is.
"""

import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from leadrecord.ledger import (
    Actor,
    LedgerDraft,
    ledger_append,
    ledger_append_many,
    ledger_lock,
    ledger_lock_held,
    ledger_verify,
)
from leadrecord.models import LedgerAction, LedgerEntry
from leadrecord.transaction_marks import (
    transaction_mark_get,
    transaction_mark_set,
    transaction_marks_forget,
)

pytestmark = pytest.mark.django_db


def _draft(i: int) -> LedgerDraft:
    return LedgerDraft(
        actor=Actor.system(),
        action=LedgerAction.TOUCH_RECORD,
        subject_type="t",
        subject_id=i,
        after={"i": i},
    )


def _one(i: int) -> LedgerEntry:
    return ledger_append(
        actor=Actor.system(),
        action=LedgerAction.TOUCH_RECORD,
        subject_type="t",
        subject_id=i,
        after={"i": i},
    )


def _statements(queries: CaptureQueriesContext, text: str) -> int:
    return sum(text in query["sql"] for query in queries.captured_queries)


HEAD_READ = "ORDER BY seq DESC LIMIT 1"


@pytest.mark.postgres
def test_one_transaction_takes_the_lock_once():
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        ledger_lock()
        _one(1)
        ledger_append_many([_draft(2), _draft(3)])
        with transaction.atomic():  # a savepoint, released
            _one(4)
        _one(5)
    assert _statements(queries, "pg_advisory_xact_lock") == 1
    assert ledger_verify().entries == 5
    assert ledger_verify().ok


def test_a_batch_after_an_append_reads_no_head():
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        _one(1)
        ledger_append_many([_draft(2), _draft(3)])
        ledger_append_many([_draft(4), _draft(5)])
    # Only the first append of the transaction asks where the chain ends (on
    # PostgreSQL a single append reads it inside its INSERT).
    assert _statements(queries, HEAD_READ) == 1
    assert [entry.seq for entry in LedgerEntry.objects.order_by("seq")] == [1, 2, 3, 4, 5]
    assert ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_the_next_transaction_takes_the_lock_and_reads_the_head_again():
    with transaction.atomic():
        _one(1)
    assert not ledger_lock_held()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        assert not ledger_lock_held()
        ledger_append_many([_draft(2), _draft(3)])
        assert ledger_lock_held()
    assert _statements(queries, HEAD_READ) == 1
    if connection.vendor == "postgresql":
        assert _statements(queries, "pg_advisory_xact_lock") == 1
    assert ledger_verify().ok


def test_a_rolled_back_savepoint_leaves_no_stale_head():
    """Entries appended in a savepoint that is rolled back are gone: the next batch
    chains onto the entry before them, not onto theirs."""
    with transaction.atomic():
        ledger_append_many([_draft(1), _draft(2)])
        with pytest.raises(ValueError, match="undo"), transaction.atomic():
            ledger_append_many([_draft(3), _draft(4)])
            _one(5)
            raise ValueError("undo")
        ledger_append_many([_draft(6), _draft(7)])
        _one(8)
        ledger_append_many([_draft(9), _draft(10)])
    assert [entry.seq for entry in LedgerEntry.objects.order_by("seq")] == list(range(1, 8))
    assert [entry.subject_id for entry in LedgerEntry.objects.order_by("seq")] == [
        "1",
        "2",
        "6",
        "7",
        "8",
        "9",
        "10",
    ]
    verified = ledger_verify()
    assert verified.ok, verified.problem
    assert verified.entries == 7


def test_a_lock_taken_in_a_rolled_back_savepoint_is_taken_again():
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with pytest.raises(ValueError, match="undo"), transaction.atomic():
            ledger_lock()
            assert ledger_lock_held()
            raise ValueError("undo")
        # PostgreSQL released the lock with the savepoint: it is not held now.
        assert not ledger_lock_held()
        ledger_append_many([_draft(1), _draft(2)])
        assert ledger_lock_held()
    if connection.vendor == "postgresql":
        assert _statements(queries, "pg_advisory_xact_lock") == 2
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_lock_is_really_held_until_the_transaction_ends():
    """The mark says held only while PostgreSQL says so: another session cannot take it."""

    def others_can_lock() -> bool:
        taken: list[bool] = []

        def probe() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_try_advisory_lock(%s)", [0x4C4544474552])
                    got = cursor.fetchone()[0]
                    if got:
                        cursor.execute("SELECT pg_advisory_unlock(%s)", [0x4C4544474552])
                    taken.append(got)
            finally:
                connections.close_all()

        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return taken[0]

    with transaction.atomic():
        with transaction.atomic():
            _one(1)  # locked in a savepoint that is released
        assert ledger_lock_held()
        assert not others_can_lock()
        _one(2)
        assert not others_can_lock()
    assert others_can_lock()
    assert ledger_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_interleaving_transactions_still_form_one_chain():
    """Writers whose transactions each append several times, singly and in batches,
    at once: every one is serialized by the lock it took once, and the chain is whole."""
    writers, rounds = 4, 5
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(rounds):
                with transaction.atomic():
                    _one(worker * 100 + i)
                    ledger_append_many([_draft(worker * 100 + i), _draft(worker * 100 + i)])
                    with transaction.atomic():
                        _one(worker * 100 + i)
                    try:
                        with transaction.atomic():
                            ledger_append_many([_draft(-1), _draft(-1)])
                            raise ValueError("undo")
                    except ValueError:
                        pass
                    ledger_append_many([_draft(worker * 100 + i), _draft(worker * 100 + i)])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    verified = ledger_verify()
    assert verified.ok, verified.problem
    assert verified.entries == writers * rounds * 6
    assert not LedgerEntry.objects.filter(subject_id="-1").exists()


# --- the marks themselves ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_mark_lasts_as_long_as_the_transaction():
    assert transaction_mark_get("test.mark") is None
    transaction_mark_set("test.mark", 1)  # outside a transaction: nothing is kept
    assert transaction_mark_get("test.mark") is None
    with transaction.atomic():
        transaction_mark_set("test.mark", 1)
        assert transaction_mark_get("test.mark") == 1
        transaction_mark_set("test.mark", 2)
        assert transaction_mark_get("test.mark") == 2
        assert transaction_mark_get("test.other") is None
    assert transaction_mark_get("test.mark") is None
    with transaction.atomic():
        assert transaction_mark_get("test.mark") is None


def test_a_rolled_back_savepoint_forgets_its_marks_and_a_released_one_keeps_them():
    with transaction.atomic():
        transaction_mark_set("test.mark", "outer")
        with pytest.raises(ValueError, match="undo"), transaction.atomic():
            transaction_mark_set("test.mark", "inner")
            assert transaction_mark_get("test.mark") == "inner"
            raise ValueError("undo")
        assert transaction_mark_get("test.mark") == "outer"
        with transaction.atomic():
            transaction_mark_set("test.mark", "released")
        assert transaction_mark_get("test.mark") == "released"
        transaction_marks_forget("test.mark")
        assert transaction_mark_get("test.mark") is None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_forgets_its_marks():
    with pytest.raises(ValueError, match="undo"), transaction.atomic():
        transaction_mark_set("test.mark", 1)
        raise ValueError("undo")
    with transaction.atomic():
        assert transaction_mark_get("test.mark") is None
