import pytest

from leadrecord.ledger_guard import LEDGER_TABLE
from leadrecord.tasks import ledger_verify_task

from ..ledger_helpers import append_entries, tamper
from ..workers import celery_worker_process, test_database_url


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


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_as_the_app_role_signs_the_checkpoint_beat_asks_for(tmp_path):
    """Beat sends the task by name; a worker connected as the application's role signs."""
    from django.conf import settings

    from leadrecord import celery_app
    from leadrecord.checkpoints import signing_key_create
    from leadrecord.models import LedgerCheckpoint

    from ..app_role import APP_ROLE, app_role_ensure

    app_role_ensure()
    entries = append_entries(4)
    key = tmp_path / "ledger.key"
    signing_key_create(key)
    owner_url = test_database_url()
    app_url = f"postgres://{APP_ROLE}@{owner_url.split('@', 1)[1]}"
    env = {
        "DATABASE_URL": app_url,
        "LEDGER_SIGNING_KEY": str(key),
        "LEDGER_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }
    task = settings.CELERY_BEAT_SCHEDULE["ledger-checkpoint-every-15-minutes"]["task"]
    with celery_worker_process(env=env):
        result = celery_app.send_task(task).get(timeout=60)
    assert result["signed"] is True and result["seq"] == 4
    stored = LedgerCheckpoint.objects.get()
    assert (stored.seq, stored.hash) == (4, entries[-1].hash)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == [
        result["path"].rsplit("/", 1)[1]
    ]
