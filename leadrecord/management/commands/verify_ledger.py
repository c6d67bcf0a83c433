import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from leadrecord.checkpoints import (
    Checkpoint,
    CheckpointError,
    checkpoint_read,
    checkpoint_signature_check,
    ledger_extends,
    signing_key_public,
)
from leadrecord.ledger import ledger_verify


class Command(BaseCommand):
    help = (
        "Recompute the ledger's hash chain; exit 1 naming the first entry that does not "
        "verify. With --checkpoint, also check that the ledger extends each signed "
        "checkpoint (nothing cut off, nothing rewritten), or exit 1 naming why not."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            type=Path,
            metavar="FILE",
            help="a checkpoint file (from ledger_checkpoint or GET ledger/checkpoints/latest/); "
            "may be given more than once",
        )
        parser.add_argument(
            "--public-key",
            default="",
            help="the Ed25519 public key (base64) the checkpoints must be signed with; "
            "default: LEDGER_SIGNING_KEY's, when that file is readable here",
        )

    def _fail(self, message: str) -> None:
        self.stderr.write(message)
        sys.exit(1)

    def _expected_public_key(self, given: str) -> str:
        if given or not settings.LEDGER_SIGNING_KEY:
            return given.strip()
        try:
            return signing_key_public(settings.LEDGER_SIGNING_KEY)
        except CheckpointError:
            # An auditor's machine has no signing key: the file's own key is checked.
            return ""

    def handle(self, *args: Any, checkpoint: list[Path], public_key: str, **options: Any) -> None:
        checkpoints: list[tuple[Path, Checkpoint]] = []
        if checkpoint:
            expected = self._expected_public_key(public_key)
            for path in checkpoint:
                try:
                    signed = checkpoint_read(path)
                    checkpoint_signature_check(signed, expected_public_key=expected)
                except CheckpointError as error:
                    self._fail(f"checkpoint {path} refused: {error}")
                checkpoints.append((path, signed))
        result = ledger_verify()
        if not result.ok:
            self._fail(
                f"ledger broken at entry {result.broken_seq}: {result.problem} "
                f"({result.entries} entries before it verify)"
            )
        for path, signed in checkpoints:
            problem = ledger_extends(signed)
            if problem:
                self._fail(f"ledger does not extend checkpoint {path}: {problem}")
        line = f"ledger ok: {result.entries} entries"
        for path, signed in checkpoints:
            line += f"; extends checkpoint {path} (entry {signed.seq}, signed {signed.signed_at})"
        self.stdout.write(line)
