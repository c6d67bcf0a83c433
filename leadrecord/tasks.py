"""Periodic checks on the ledger."""

import logging

from celery import shared_task

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
