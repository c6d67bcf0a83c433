import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.backups import BackupError, backup_restore
from leadrecord.db_roles import owner_connection
from leadrecord.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Load a backup into the (empty) database of DATABASE_URL, as the owner of "
        "MIGRATE_DATABASE_URL when set, then verify the ledger; exit 1 if it does not "
        "verify. Grants are not in a backup: run grant_app_role afterwards."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        # Restoring creates the tables, so it is the owner's job, as migrate is; the
        # check reads the ledger before any grant exists, so the owner does that too.
        with owner_connection():
            try:
                backup_restore(options["path"])
            except BackupError as error:
                raise CommandError(str(error)) from error
            result = ledger_verify()
        if not result.ok:
            self.stderr.write(
                f"restored, but the ledger is broken at entry {result.broken_seq}: {result.problem}"
            )
            sys.exit(1)
        self.stdout.write(f"restored; ledger ok: {result.entries} entries")
