"""Ledger helpers shared by tests: append entries, tamper like an attacker."""

from django.db import connection, transaction

from leadrecord.ledger import Actor, ledger_append
from leadrecord.ledger_guard import ledger_guard_install, ledger_guard_remove
from leadrecord.models import LedgerEntry


def append_entries(n: int, action: str = "test.append") -> list[LedgerEntry]:
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
