"""Query plans for tests that hold a lookup to an index (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction


def plan_without_scans(
    sql: str, params: Sequence[Any] | None = None, *, generic: bool = False
) -> str:
    """``EXPLAIN`` of ``sql`` with sequential scans priced out, so the plan shows what the
    indexes allow; ``generic``: as a prepared statement is planned for any value."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if generic:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())
