"""Ledger helpers shared by tests: append entries, tamper like an attacker."""

from django.db import connection, transaction

from leadrecord.ledger import GENESIS_HASH, Actor, ledger_append, ledger_entry_hash
from leadrecord.ledger_guard import ledger_guard_install, ledger_guard_remove
from leadrecord.models import LedgerAction, LedgerEntry


def append_entries(n: int, action: LedgerAction = LedgerAction.TOUCH_RECORD) -> list[LedgerEntry]:
    """Append ``n`` entries in one transaction."""
    with transaction.atomic():
        return [
            ledger_append(
                actor=Actor.system(),
                action=action,
                subject_type="thing",
                subject_id=i,
                after={"i": i, "name": "Zoë"},
            )
            for i in range(n)
        ]


def tamper(sql: str, params: list[str] | None = None) -> None:
    """An attacker with database access drops the guard, edits, restores it."""
    ledger_guard_remove(connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
    ledger_guard_install(connection)


def rewrite_recomputing_hashes(seq: int, reason: str) -> None:
    """An attacker with the owner's rights changes entry ``seq`` and recomputes every
    later hash with the application's own hashing, so the chain verifies again."""
    fields = [field.attname for field in LedgerEntry._meta.concrete_fields]
    ledger_guard_remove(connection)
    with transaction.atomic():
        previous = LedgerEntry.objects.filter(seq=seq - 1).values_list("hash", flat=True).first()
        for row in LedgerEntry.objects.filter(seq__gte=seq).order_by("seq").values(*fields):
            if row["seq"] == seq:
                row["reason"] = reason
            row["prev_hash"] = previous or GENESIS_HASH
            row["hash"] = ledger_entry_hash(**{k: v for k, v in row.items() if k != "hash"})
            LedgerEntry.objects.filter(seq=row["seq"]).update(
                reason=row["reason"], prev_hash=row["prev_hash"], hash=row["hash"]
            )
            previous = row["hash"]
    ledger_guard_install(connection)
