import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from leadrecord.ledger import (
    GENESIS_HASH,
    Actor,
    LedgerDraft,
    ledger_append,
    ledger_append_many,
    ledger_verify,
)
from leadrecord.ledger_guard import LEDGER_TABLE
from leadrecord.models import LedgerAction, LedgerEntry

from ..ledger_helpers import append_entries, tamper

pytestmark = pytest.mark.django_db


def test_entries_form_a_chain_from_genesis():
    first, second, third = append_entries(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    assert ledger_verify().ok
    assert ledger_verify().entries == 3


def test_append_keeps_occurred_and_recorded_times_apart():
    earlier = timezone.now() - timedelta(days=30)
    with transaction.atomic():
        entry = ledger_append(
            actor=Actor.system(),
            action=LedgerAction.CONTACT_CREATE,
            subject_type="t",
            subject_id=1,
            occurred_at=earlier,
        )
    entry.refresh_from_db()
    assert entry.occurred_at == earlier
    assert entry.recorded_at > earlier


@pytest.mark.django_db(transaction=True)
def test_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="transaction"):
        ledger_append(
            actor=Actor.system(), action=LedgerAction.CONTACT_CREATE, subject_type="t", subject_id=1
        )


def test_append_rolls_back_with_the_callers_transaction():
    append_entries(1)
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        ledger_append(
            actor=Actor.system(), action=LedgerAction.CONTACT_CREATE, subject_type="t", subject_id=2
        )
        1 / 0  # noqa: B018
    assert LedgerEntry.objects.count() == 1
    assert ledger_verify().ok


def test_append_many_chains_a_batch():
    append_entries(2)
    with transaction.atomic():
        batch = ledger_append_many(
            [
                LedgerDraft(
                    actor=Actor.system(),
                    action=LedgerAction.TOUCH_RECORD,
                    subject_type="t",
                    subject_id=i,
                )
                for i in range(2500)
            ]
        )
    assert [e.seq for e in batch] == list(range(3, 2503))
    assert ledger_verify().entries == 2502


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {LEDGER_TABLE} SET reason = 'rewritten' WHERE seq = 1",
        f"DELETE FROM {LEDGER_TABLE} WHERE seq = 1",
        f"DELETE FROM {LEDGER_TABLE}",
    ],
)
def test_raw_sql_update_and_delete_are_refused_by_the_database(statement):
    append_entries(2)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert LedgerEntry.objects.filter(reason="").count() == 2


def test_orm_update_and_delete_are_refused_too():
    (entry,) = append_entries(1)
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(action="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    assert LedgerEntry.objects.get().action == LedgerAction.TOUCH_RECORD


@pytest.mark.postgres
def test_truncate_is_refused_on_postgres():
    append_entries(1)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"TRUNCATE {LEDGER_TABLE}")
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("sql", "params", "broken_seq"),
    [
        (f"UPDATE {LEDGER_TABLE} SET reason = %s WHERE seq = 3", ["forged"], 3),
        (f"UPDATE {LEDGER_TABLE} SET after = %s WHERE seq = 4", ['{"i": 99}'], 4),
        (f"DELETE FROM {LEDGER_TABLE} WHERE seq = 2", [], 2),
        (f"UPDATE {LEDGER_TABLE} SET prev_hash = %s WHERE seq = 5", ["f" * 64], 5),
    ],
)
def test_verify_names_the_first_entry_altered_behind_the_guard(sql, params, broken_seq):
    append_entries(6)
    tamper(sql, params)
    result = ledger_verify()
    assert not result.ok
    assert result.broken_seq == broken_seq
    assert result.entries == broken_seq - 1


def test_verify_ledger_command_reports_ok_and_broken(capsys):
    append_entries(4)
    call_command("verify_ledger")
    assert capsys.readouterr().out.strip() == "ledger ok: 4 entries"

    tamper(f"UPDATE {LEDGER_TABLE} SET action = %s WHERE seq = 2", ["forged"])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_ledger")
    assert exit_info.value.code == 1
    assert "entry 2" in capsys.readouterr().err


def test_empty_ledger_verifies(capsys):
    call_command("verify_ledger")
    assert capsys.readouterr().out.strip() == "ledger ok: 0 entries"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_one_unbroken_chain():
    writers, appends_each = 8, 25
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(appends_each):
                with transaction.atomic():
                    ledger_append(
                        actor=Actor.system(f"writer-{worker}"),
                        action=LedgerAction.TOUCH_RECORD,
                        subject_type="worker",
                        subject_id=worker,
                        after={"i": i},
                    )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = list(LedgerEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, writers * appends_each + 1))
    result = ledger_verify()
    assert result.ok
    assert result.entries == writers * appends_each
    per_writer = {
        f"writer-{w}": LedgerEntry.objects.filter(actor_label=f"writer-{w}").count()
        for w in range(writers)
    }
    assert set(per_writer.values()) == {appends_each}


def test_single_and_batch_appends_hash_alike_with_awkward_text():
    """One entry is chained by the database (PostgreSQL), a batch in Python: both
    must hash exactly what ledger_entry_hash hashes, whatever the text holds."""
    awkward = 'Zoë "quoted" \\ back\tslash\nline — 東京 🙂'
    with transaction.atomic():
        single = ledger_append(
            actor=Actor(kind="user", label=awkward, user_id=None),
            action=LedgerAction.CONTACT_CREATE,
            subject_type="t",
            subject_id=awkward,
            after={"name": awkward, "nested": {"z": 1, "a": [None, True, 1.5]}},
            reason=awkward,
        )
        batch = ledger_append_many(
            [
                LedgerDraft(
                    actor=Actor(kind="user", label=awkward, user_id=None),
                    action=LedgerAction.TOUCH_RECORD,
                    subject_type="t",
                    subject_id=f"{n}{awkward}",
                    before={"v": awkward},
                    reason=awkward,
                )
                for n in range(2)
            ]
        )
        after_batch = ledger_append(
            actor=Actor.system(), action=LedgerAction.CONSENT_RECORD, subject_type="t", subject_id=3
        )
    stored = LedgerEntry.objects.get(seq=single.seq)
    assert stored.hash == single.hash
    assert stored.after == {"name": awkward, "nested": {"z": 1, "a": [None, True, 1.5]}}
    assert [entry.seq for entry in (single, *batch, after_batch)] == [1, 2, 3, 4]
    assert after_batch.prev_hash == batch[-1].hash
    stored_batch = LedgerEntry.objects.get(seq=batch[1].seq)
    assert (stored_batch.actor_label, stored_batch.subject_id, stored_batch.reason) == (
        awkward,
        f"1{awkward}",
        awkward,
    )
    assert stored_batch.before == {"v": awkward}
    assert ledger_verify().ok
    assert ledger_verify().entries == 4


def test_a_freshly_migrated_embedded_database_refuses_ledger_changes(tmp_path):
    """The embedded default (SQLite) rebuilds a table to alter it, which drops its
    triggers: after every migration the append-only guard must still be there."""
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    database = tmp_path / "fresh.sqlite3"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "1"},
        check=True,
    )
    with sqlite3.connect(database) as db:
        db.execute(
            f"INSERT INTO {LEDGER_TABLE} (seq, occurred_at, recorded_at, actor_kind, actor_label,"
            " action, subject_type, subject_id, reason, prev_hash, hash)"
            " VALUES (1, '2026-01-01', '2026-01-01', 'system', 's', 'a', 't', '1', '', 'p', 'h')"
        )
        for statement in (f"UPDATE {LEDGER_TABLE} SET reason = 'x'", f"DELETE FROM {LEDGER_TABLE}"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
