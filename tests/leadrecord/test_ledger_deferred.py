"""Entries deferred to the end of their transaction (leadrecord.ledger.ledger_deferred).

Inside the block appends are collected, not written; at its end the lock is taken, the
actions the transaction asked to recheck are looked for since the block began, and the
entries are chained in one batch. Another writer goes on meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from leadrecord.ledger import (
    GENESIS_HASH,
    Actor,
    LedgerDraft,
    LedgerRedo,
    LedgerWatcher,
    _flush_statement,
    ledger_append,
    ledger_append_prepared,
    ledger_deferred,
    ledger_deferring,
    ledger_lock,
    ledger_lock_held,
    ledger_lock_or_recheck,
    ledger_prepare,
    ledger_verify,
    ledger_watch,
)
from leadrecord.models import LedgerAction, LedgerEntry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _one(i: int, action: str = LedgerAction.TOUCH_RECORD) -> LedgerEntry:
    return ledger_append(
        actor=Actor.system(), action=action, subject_type="t", subject_id=i, after={"i": i}
    )


def _elsewhere(work: Callable[[], object]) -> bool:
    """Run ``work`` in its own transaction on another connection; whether it finished
    (it would not while this one held the lock)."""

    def run() -> None:
        try:
            with transaction.atomic():
                work()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(2)
    finished = not thread.is_alive()
    if not finished:
        # Let it go on after this transaction; the test has failed already.
        threading.Thread(target=thread.join).start()
    return finished


def _subjects() -> list[str]:
    return list(LedgerEntry.objects.order_by("seq").values_list("subject_id", flat=True))


def test_entries_are_chained_at_the_end_after_another_writers():
    with transaction.atomic(), ledger_deferred() as deferring:
        assert deferring
        entry = _one(1)
        assert entry.seq is None  # not chained yet
        assert not ledger_lock_held()
        assert _elsewhere(lambda: _one(2))
        _one(3)
    assert _subjects() == ["2", "1", "3"]
    verified = ledger_verify()
    assert verified.ok and verified.entries == 3


def test_an_action_to_recheck_recorded_meanwhile_undoes_the_transaction():
    with pytest.raises(LedgerRedo), transaction.atomic(), ledger_deferred():
        ledger_lock_or_recheck([LedgerAction.CONTACT_ERASE])
        _one(1)
        assert _elsewhere(lambda: _one(2, LedgerAction.CONTACT_ERASE))
    assert _subjects() == ["2"]
    assert ledger_verify().ok


def test_other_actions_recorded_meanwhile_change_nothing():
    with transaction.atomic(), ledger_deferred():
        ledger_lock_or_recheck([LedgerAction.CONTACT_ERASE])
        _one(1)
        assert _elsewhere(lambda: _one(2, LedgerAction.CONTACT_MERGE))
    assert _subjects() == ["2", "1"]


def test_a_rolled_back_transaction_leaves_nothing_and_no_stale_head():
    with pytest.raises(RuntimeError), transaction.atomic(), ledger_deferred():
        _one(1)
        _one(2)
        raise RuntimeError("undone")
    assert _subjects() == []
    with transaction.atomic():
        _one(3)
    assert ledger_verify().ok and _subjects() == ["3"]


def test_entries_of_a_savepoint_rolled_back_are_not_chained():
    with transaction.atomic(), ledger_deferred():
        _one(1)
        with pytest.raises(RuntimeError), transaction.atomic():
            _one(2)
            raise RuntimeError("undone")
        _one(3)
    assert _subjects() == ["1", "3"]
    assert ledger_verify().ok


def test_a_plain_lock_inside_flushes_at_once_and_goes_on_undeferred():
    with transaction.atomic(), ledger_deferred():
        _one(1)
        ledger_lock()
        assert ledger_lock_held() and not ledger_deferring()
        assert _one(2).seq == 2
        assert not _elsewhere(lambda: _one(3))
    assert _subjects()[:2] == ["1", "2"]


def test_a_flush_rolled_back_with_its_savepoint_is_deferred_again():
    with transaction.atomic(), ledger_deferred():
        _one(1)
        with pytest.raises(RuntimeError), transaction.atomic():
            ledger_lock()  # flushes 1 inside the savepoint
            raise RuntimeError("undone")
        assert ledger_deferring()
        assert _elsewhere(lambda: _one(2))
        _one(3)
    assert _subjects() == ["2", "1", "3"]
    assert ledger_verify().ok


def test_the_watchers_hear_the_flushed_entries_with_their_seqs():
    heard: list[tuple[int, str]] = []
    ledger_watch(
        LedgerWatcher(
            name="test.deferred",
            actions=lambda: {LedgerAction.TOUCH_RECORD},
            written=lambda entries: heard.extend(
                (entry.seq, entry.subject_id) for entry in entries
            ),
        )
    )
    try:
        with transaction.atomic(), ledger_deferred():
            _one(1)
            _one(2, LedgerAction.CONTACT_MERGE)
            assert heard == []
            _one(3)
    finally:
        ledger_watch(LedgerWatcher(name="test.deferred", actions=set, written=lambda _: None))
    assert heard == [(1, "1"), (3, "3")]


def test_the_lock_long_in_coming_undoes_the_transaction():
    """A writer holds the lock past the wait: the deferring one gives way (redone by its
    caller) rather than wait on, so that one holding the lock and waiting on its rows is
    never the one PostgreSQL cancels."""
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                ledger_lock()
                held.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    try:
        with pytest.raises(LedgerRedo), transaction.atomic(), ledger_deferred():
            _one(1)
    finally:
        release.set()
        holder.join()
    assert _subjects() == []


def test_entries_prepared_while_deferring_go_in_by_copy_once_the_deferral_ended():
    """Entries prepared while deferring carry no COPY text (the flush inserts them from
    their canonical text); appended after a plain lock ended the deferral, they go in by
    COPY all the same, with the same columns and hashes."""
    drafts = [
        LedgerDraft(
            actor=Actor(kind="user", label='tab\there "q" \\ é', user_id=7),
            action=LedgerAction.TOUCH_RECORD,
            subject_type="t",
            subject_id=n,
            contact_id=None,
            before=None if n else {"n": n},
            after={"n": n, "text": "line\nbreak"},
            reason="why\tnot",
        )
        for n in range(2)
    ]
    with transaction.atomic(), ledger_deferred():
        prepared = ledger_prepare(drafts)
        assert all(entry.copy_text == "" for entry in prepared)
        ledger_lock()  # the deferral ends here: nothing was pending
        assert not ledger_deferring()
        ledger_append_prepared(prepared)
    rows = list(LedgerEntry.objects.order_by("seq"))
    assert [(row.subject_id, row.before, row.after, row.reason) for row in rows] == [
        ("0", {"n": 0}, {"n": 0, "text": "line\nbreak"}, "why\tnot"),
        ("1", None, {"n": 1, "text": "line\nbreak"}, "why\tnot"),
    ]
    assert rows[0].actor_label == 'tab\there "q" \\ é'
    verified = ledger_verify()
    assert verified.ok and verified.entries == 2


def test_the_flush_parses_each_entry_once():
    """The flush reads an entry's columns from its canonical JSON: parsed once per entry,
    not once per column read (a subquery the planner pulls up would repeat the parse in
    every column's expression)."""
    sql, _ = _flush_statement("TRUE")
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (VERBOSE) {sql}", [GENESIS_HASH, 0, [], ['"x"']])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert plan.count("]'::text))::jsonb") == 1, plan
