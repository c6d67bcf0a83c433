import pytest

from leadrecord.ledger_guard import LEDGER_TABLE
from leadrecord.tasks import ledger_verify_task

from ..ledger_helpers import append_entries, tamper
from ..workers import celery_worker_process


@pytest.mark.django_db
def test_ledger_verify_task_in_process():
    append_entries(3)
    assert ledger_verify_task.delay().get() == {"ok": True, "entries": 3, "broken_seq": None}


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_verifies_the_ledger_and_catches_tampering():
    append_entries(5)
    with celery_worker_process():
        result = ledger_verify_task.delay().get(timeout=60)
        assert result == {"ok": True, "entries": 5, "broken_seq": None}

        tamper(f"UPDATE {LEDGER_TABLE} SET reason = 'forged' WHERE seq = 4")

        result = ledger_verify_task.delay().get(timeout=60)
        assert result == {"ok": False, "entries": 3, "broken_seq": 4}
