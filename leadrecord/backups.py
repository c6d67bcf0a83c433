"""Backups with PostgreSQL's own tools: ``pg_dump`` out, ``pg_restore`` in, the ledger checked.

A backup is one ``pg_dump --format=custom`` file of the whole database (the
ledger's append-only triggers included). A restore loads it into an *empty*
database with ``pg_restore`` (as plain inserts through COPY, which the
triggers allow) and then recomputes the ledger's hash chain: a restore whose
ledger does not verify is reported as failed. The embedded SQLite database is
backed up by copying its file while the product is stopped.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from django.db import connection


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


def postgres_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: from ``LEADRECORD_PG_BIN``, the PATH, or the newest
    ``/usr/lib/postgresql/*/bin`` (Debian keeps them there)."""
    folder = os.environ.get("LEADRECORD_PG_BIN")
    if folder and Path(folder, name).exists():
        return str(Path(folder, name))
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise BackupError(
        f"{name} not found: install PostgreSQL's client tools or set LEADRECORD_PG_BIN"
    )


@dataclass(frozen=True)
class Target:
    arguments: list[str]
    environment: dict[str, str]


def _target() -> Target:
    # A PostgreSQL feature, not a speed-up: pg_dump and pg_restore.
    if connection.vendor != "postgresql":
        raise BackupError(
            "backup and restore work on PostgreSQL; for the embedded SQLite database, "
            "stop the product and copy its file"
        )
    settings = connection.settings_dict
    arguments = ["--dbname", settings["NAME"]]
    if settings.get("HOST"):
        arguments += ["--host", settings["HOST"]]
    if settings.get("PORT"):
        arguments += ["--port", str(settings["PORT"])]
    if settings.get("USER"):
        arguments += ["--username", settings["USER"]]
    environment = {**os.environ}
    if settings.get("PASSWORD"):
        environment["PGPASSWORD"] = settings["PASSWORD"]
    return Target(arguments, environment)


def _run(command: list[str], environment: dict[str, str]) -> None:
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")


def backup_write(path: Path) -> int:
    """Dump the database to ``path`` (custom format); returns its size in bytes."""
    target = _target()
    _run(
        [
            postgres_tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            # Grants name roles of this cluster; the restored database gets its own from
            # grant_app_role (docs/ledger-integrity.md).
            "--no-privileges",
            "--file",
            str(path),
            *target.arguments,
        ],
        target.environment,
    )
    return path.stat().st_size


def _database_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        return int(cursor.fetchone()[0]) == 0


def backup_restore(path: Path) -> None:
    """Load a backup into this (empty) database. Refuses a database that has tables."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    target = _target()
    if not _database_is_empty():
        raise BackupError(
            "the database is not empty: restore into a newly created database, then point "
            "DATABASE_URL at it"
        )
    connection.close()  # pg_restore makes its own connection
    _run(
        [
            postgres_tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            *target.arguments,
            str(path),
        ],
        target.environment,
    )
