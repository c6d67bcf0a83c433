"""One snapshot of the database for a reader's queries, and what it read once in it.

PostgreSQL gives each statement its own snapshot outside a transaction, so a report
could take one state of the aggregates' marks and the next state's rows. A reader runs
its queries in ``consistent_read``: a read-only REPEATABLE READ transaction reads them
all as of its first query. A dashboard opens one for the whole page, so its reports
agree with each other, and the rows every report starts from (the aggregates' latest
state, the latest complete run) are read once per page (``snapshot_remember``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models.expressions import RawSQL

from contacts.models import Touch
from leadrecord.ledger import LEDGER_HEAD_SEQ_SQL
from leadrecord.transaction_marks import transaction_mark_get, transaction_mark_set

_SNAPSHOT_MARK = "reports.snapshot"
_UNREAD = object()
Value = TypeVar("Value")


@contextmanager
def consistent_read() -> Iterator[None]:
    """Run the caller's queries on one snapshot of the database.

    Inside a caller's transaction nothing more is opened: its queries already share
    whatever snapshot its isolation gives (a page's, or a writer's own), and a savepoint
    would only add two round trips per report. On SQLite a transaction reads one
    snapshot as it is."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        transaction_mark_set(_SNAPSHOT_MARK, {})
        if connection.vendor != "postgresql":
            yield
            return
        with connection.execute_wrapper(_SnapshotOpening()):
            yield


class _SnapshotOpening:
    """Sends ``SET TRANSACTION`` with the snapshot's first query, in its round trip (each
    is one more wait while events stream in on the same cores). Not the driver's session
    characteristics: outside a transaction psycopg2 sets and resets those with
    statements of their own."""

    def __init__(self) -> None:
        self.sent = False

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        if not self.sent:
            self.sent = True
            driver_cursor = getattr(context["cursor"], "cursor", None)
            if many or getattr(driver_cursor, "name", None):
                # Many rows, or a server-side cursor (DECLARE ... FOR one query): first.
                with connection.cursor() as cursor:
                    cursor.execute(_SNAPSHOT_CHARACTERISTICS)
            else:
                sql = f"{_SNAPSHOT_CHARACTERISTICS}; {sql}"
        return execute(sql, params, many, context)


_SNAPSHOT_CHARACTERISTICS = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


def snapshot_open() -> bool:
    """Whether the caller reads in a ``consistent_read`` snapshot."""
    return transaction_mark_get(_SNAPSHOT_MARK) is not None


def snapshot_remember(name: str, read: Callable[[], Value]) -> Value:
    """``read()``, once per ``consistent_read`` snapshot (every call outside one reads):
    within a snapshot the answer cannot change."""
    remembered: dict[str, object] | None = transaction_mark_get(_SNAPSHOT_MARK)
    if remembered is None:
        return read()
    value = remembered.get(name, _UNREAD)
    if value is _UNREAD:
        value = remembered[name] = read()
    return value  # type: ignore[return-value]


def snapshot_ledger_head() -> int:
    """The ledger's head as this snapshot sees it (read once per snapshot: the freshness
    line and the live parts both ask)."""
    return snapshot_heads()[0]


def snapshot_heads() -> tuple[int, int]:
    """The ledger's head and the highest touch id (0 without touches) this snapshot sees,
    in one query: the live parts ask both, and each query is one more wait under load."""
    return snapshot_remember(_HEADS, _heads_read)


_HEADS = "ledger head and last touch"


def _heads_sql() -> tuple[str, str]:
    """The heads as two scalar SQL expressions (the ledger's as its writers read it)."""
    touches = connection.ops.quote_name(Touch._meta.db_table)
    return LEDGER_HEAD_SEQ_SQL, f"(SELECT max(id) FROM {touches})"  # noqa: S608


def snapshot_heads_columns() -> dict[str, RawSQL]:
    """The heads as two columns another query of the snapshot can carry (the first query
    of a reader's snapshot, say), named for ``snapshot_heads_carried``."""
    head, top = _heads_sql()
    # The table names from the models, no values.
    return {
        "snapshot_ledger_head": RawSQL(head, ()),  # noqa: S611
        "snapshot_touch_top": RawSQL(top, ()),  # noqa: S611
    }


def snapshot_heads_carried(row: object) -> None:
    """Remember the heads a row read with ``snapshot_heads_columns`` carries, for this
    snapshot: ``snapshot_heads`` then asks nothing more."""
    remembered: dict[str, object] | None = transaction_mark_get(_SNAPSHOT_MARK)
    if remembered is not None:
        head, top = row.snapshot_ledger_head, row.snapshot_touch_top  # type: ignore[attr-defined]
        remembered[_HEADS] = (int(head or 0), int(top or 0))


def _heads_read() -> tuple[int, int]:
    head_sql, top_sql = _heads_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {head_sql}, {top_sql}")
        head, top = cursor.fetchone()
    return int(head or 0), int(top or 0)
