"""Backups: pg_dump out, pg_restore into a new database, and the restored ledger verifies."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from contacts.models import Channel, Contact, Touch
from contacts.services import touch_record
from leadrecord.ledger import Actor
from leadrecord.models import LedgerEntry
from tests.factories import contact_make

from ..workers import ROOT, test_database_url

SYSTEM = Actor.system("test")


def _record() -> None:
    web = Channel.objects.get(key="web")
    for _ in range(5):
        touch_record(contact=contact_make(organization="acme.example"), channel=web, actor=SYSTEM)


@pytest.fixture
def restored_database():
    """An empty database beside the test one; dropped afterwards."""
    url = test_database_url()
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_restored"
    admin = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "DEBUG": "1"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backup_restores_into_a_new_database_and_its_ledger_verifies(
    tmp_path: Path, restored_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _record()
    entries = LedgerEntry.objects.count()
    backup = tmp_path / "leadrecord.dump"
    call_command("backup", str(backup))
    assert "backup written" in capsys.readouterr().out
    assert backup.stat().st_size > 0

    restored = _manage(restored_database, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == f"restored; ledger ok: {entries} entries"
    with psycopg2.connect(restored_database) as other, other.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_touch")
        assert cursor.fetchone()[0] == Touch.objects.count() == 5
        cursor.execute("SELECT count(*) FROM contacts_contact")
        assert cursor.fetchone()[0] == Contact.objects.count()
        # The append-only triggers came back with the data.
        with pytest.raises(psycopg2.Error):
            cursor.execute("DELETE FROM leadrecord_ledgerentry")

    # Restoring over a database that has data is refused, and changes nothing.
    again = _manage(restored_database, "restore", str(backup))
    assert again.returncode != 0
    assert "not empty" in again.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_tampered_restore_is_reported(tmp_path: Path, restored_database: str) -> None:
    _record()
    backup = tmp_path / "leadrecord.dump"
    call_command("backup", str(backup))
    restored = _manage(restored_database, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    # Someone edits history in the restored copy behind the triggers' back.
    with psycopg2.connect(restored_database) as other, other.cursor() as cursor:
        cursor.execute("ALTER TABLE leadrecord_ledgerentry DISABLE TRIGGER USER")
        cursor.execute("UPDATE leadrecord_ledgerentry SET reason = 'edited' WHERE seq = 2")
    checked = _manage(restored_database, "verify_ledger")
    assert checked.returncode == 1
    assert "broken at entry 2" in checked.stderr


def test_backup_refuses_an_existing_file_and_sqlite(tmp_path: Path, db: None) -> None:
    existing = tmp_path / "old.dump"
    existing.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="exists"):
        call_command("backup", str(existing))
    assert existing.read_bytes() == b"keep me"
    if connection.vendor == "sqlite":
        with pytest.raises(CommandError, match="copy its file"):
            call_command("backup", str(tmp_path / "new.dump"))
        with pytest.raises(CommandError, match="no backup file"):
            call_command("restore", str(tmp_path / "missing.dump"))
