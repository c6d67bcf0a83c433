"""Statements prepared once per database connection (PostgreSQL).

The form post's read and write, and the ledger flush that chains its entries,
are each one statement sent on every post. Prepared, PostgreSQL plans each once
per connection instead of on every post, which bench/forms.py's rate needed.
psycopg2 binds no parameters on the server, so a statement is prepared with SQL
(``PREPARE name AS ...``) in front of its first ``EXECUTE``, in the same round trip.

Which statements a connection has prepared is kept per driver connection (a new
one prepares again). A prepared statement lasts as long as the session, whatever
becomes of the transaction that prepared it; whoever sent one that may have
failed calls ``prepared_forget``, and the list is read again from the server.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection

_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _prepared_on(raw: Any) -> set[str]:
    """The names prepared on this driver connection."""
    prepared = _PREPARED.get(raw)
    if prepared is None:
        # A connection this process has not used for this yet: it may still have
        # statements prepared before (they last as long as the session).
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements")
            prepared = _PREPARED[raw] = {row[0] for row in cursor.fetchall()}
    return prepared


def prepared_name(prefix: str, sql: str) -> str:
    """A statement's name made from its text: one name per text, so a statement built
    from parts (one per shape of form post, say) is prepared once per shape."""
    return f"{prefix}_{hashlib.sha1(sql.encode()).hexdigest()[:16]}"  # noqa: S324 -- a name, not a secret


def as_prepared(name: str, sql: str, count: int) -> tuple[str, Callable[[], None]]:
    """The SQL that runs ``sql`` (with ``count`` ``%s`` placeholders) as the prepared
    statement ``name`` on this connection: its ``EXECUTE``, after its ``PREPARE`` where
    the connection has not prepared it yet; and what to call once that SQL ran."""
    prepared = _prepared_on(connection.connection)
    run = f"EXECUTE {name}({', '.join(['%s'] * count)})"
    if name in prepared:
        return run, _nothing
    numbered = iter(range(1, count + 1))
    statement = re.sub("%s", lambda _: f"${next(numbered)}", sql)
    return f"PREPARE {name} AS {statement}; {run}", lambda: prepared.add(name)


def _nothing() -> None:
    pass


def execute_prepared(cursor: Any, name: str, sql: str, params: Sequence[Any]) -> None:
    """Run ``sql`` (with ``%s`` placeholders) as the prepared statement ``name``,
    preparing it first on a connection that has not."""
    run, ran = as_prepared(name, sql, len(params))
    try:
        cursor.execute(run, params)
    except BaseException:
        prepared_forget()
        raise
    ran()


def prepared_forget() -> None:
    """Forget which statements this connection has prepared: something sent with a
    ``PREPARE`` may have failed, so they are read again next time."""
    if connection.connection is not None:
        _PREPARED.pop(connection.connection, None)
