from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leadrecord.checkpoints import CheckpointError, signing_key_create


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 key for signing ledger checkpoints at PATH (readable by its "
        "owner only; never over an existing file) and print its public key, and nothing else."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        try:
            public_key = signing_key_create(path)
        except (CheckpointError, OSError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(public_key)
