from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from leadrecord.checkpoints import CheckpointError, ledger_checkpoint_sign


class Command(BaseCommand):
    help = (
        "Sign the ledger's head (seq, hash, time) with the key in LEDGER_SIGNING_KEY and "
        "write the checkpoint under LEDGER_CHECKPOINT_DIR."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.LEDGER_SIGNING_KEY:
            raise CommandError(
                "set LEDGER_SIGNING_KEY to the signing key's file (make one with "
                "manage.py ledger_keygen PATH)"
            )
        try:
            signed = ledger_checkpoint_sign(
                key_path=settings.LEDGER_SIGNING_KEY, directory=settings.LEDGER_CHECKPOINT_DIR
            )
        except (CheckpointError, OSError) as error:
            raise CommandError(f"no checkpoint signed: {error}") from error
        checkpoint = signed.checkpoint
        state = "signed" if signed.created else "unchanged since the latest checkpoint"
        self.stdout.write(
            f"checkpoint {state}: entry {checkpoint.seq}, hash {checkpoint.hash}, "
            f"signed {checkpoint.signed_at}: {signed.path}"
        )
