import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.backups import BackupError, backup_restore
from leadrecord.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Load a backup into the (empty) database of DATABASE_URL, then verify the ledger; "
        "exit 1 if it does not verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
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
