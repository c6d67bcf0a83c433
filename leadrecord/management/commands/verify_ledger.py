import sys
from typing import Any

from django.core.management.base import BaseCommand

from leadrecord.ledger import ledger_verify


class Command(BaseCommand):
    help = "Recompute the ledger's hash chain; exit 1 naming the first entry that does not verify."

    def handle(self, *args: Any, **options: Any) -> None:
        result = ledger_verify()
        if result.ok:
            self.stdout.write(f"ledger ok: {result.entries} entries")
            return
        self.stderr.write(
            f"ledger broken at entry {result.broken_seq}: {result.problem} "
            f"({result.entries} entries before it verify)"
        )
        sys.exit(1)
