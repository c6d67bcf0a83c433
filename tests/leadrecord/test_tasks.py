import pytest
from django.db import connection, transaction

from leadrecord.ledger import Actor, ledger_append
from leadrecord.ledger_guard import LEDGER_TABLE, ledger_guard_install, ledger_guard_remove
from leadrecord.tasks import ledger_verify_task

from ..workers import celery_worker_process


def _append(n: int) -> None:
    with transaction.atomic():
        for i in range(n):
            ledger_append(actor=Actor.system(), action="test", subject_type="t", subject_id=i)


@pytest.mark.django_db
def test_ledger_verify_task_in_process():
    _append(3)
    assert ledger_verify_task.delay().get() == {"ok": True, "entries": 3, "broken_seq": None}


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_verifies_the_ledger_and_catches_tampering():
    _append(5)
    with celery_worker_process():
        result = ledger_verify_task.delay().get(timeout=60)
        assert result == {"ok": True, "entries": 5, "broken_seq": None}

        ledger_guard_remove(connection)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {LEDGER_TABLE} SET reason = 'forged' WHERE seq = 4")
        ledger_guard_install(connection)

        result = ledger_verify_task.delay().get(timeout=60)
        assert result == {"ok": False, "entries": 3, "broken_seq": 4}
