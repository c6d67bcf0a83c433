"""Periodic checks on the ledger, and its signed checkpoints."""

import logging

from celery import shared_task
from django.conf import settings

from .checkpoints import CheckpointError, ledger_checkpoint_sign
from .ledger import ledger_verify

logger = logging.getLogger(__name__)


@shared_task(name="leadrecord.ledger_verify")
def ledger_verify_task() -> dict[str, object]:
    """Recompute the chain (read-only, so safe to run any number of times)."""
    result = ledger_verify()
    if result.ok:
        logger.info("ledger ok: %s entries", result.entries)
    else:
        logger.error("ledger broken at entry %s: %s", result.broken_seq, result.problem)
    return {"ok": result.ok, "entries": result.entries, "broken_seq": result.broken_seq}


@shared_task(name="leadrecord.ledger_checkpoint")
def ledger_checkpoint_task() -> dict[str, object]:
    """Sign the ledger's head; safe to run twice (an unchanged head is not signed again).

    Without a signing key it logs and does nothing, so the embedded default and a
    stack not yet given a key run their periodic work all the same.
    """
    if not settings.LEDGER_SIGNING_KEY:
        logger.warning("ledger checkpoint skipped: LEDGER_SIGNING_KEY is not set")
        return {"signed": False, "reason": "LEDGER_SIGNING_KEY is not set"}
    try:
        signed = ledger_checkpoint_sign(
            key_path=settings.LEDGER_SIGNING_KEY, directory=settings.LEDGER_CHECKPOINT_DIR
        )
    except (CheckpointError, OSError) as error:
        logger.error("ledger checkpoint failed: %s", error)
        return {"signed": False, "reason": str(error)}
    logger.info("ledger checkpoint of entry %s: %s", signed.checkpoint.seq, signed.path)
    return {"signed": signed.created, "seq": signed.checkpoint.seq, "path": str(signed.path)}
