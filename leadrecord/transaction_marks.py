"""Values known for the rest of the current transaction, or of the savepoint they were set in.

A writer that takes the ledger lock, reads the ledger's head or the active ruleset
needs them again in later services of the same transaction; asking the database
each time was most of a small write's round trips. A mark remembers such a value
for exactly as long as it stays true:

- it is kept as a no-op ``on_commit`` hook, so Django forgets it with the
  transaction (commit, rollback, a closed connection) and with any savepoint it
  was set in that is rolled back: the database undid what the mark says too (an
  advisory lock taken in a rolled-back savepoint is released with it);
- a mark set again in the same savepoint replaces its value; set in a deeper
  savepoint it is a new hook, so rolling that savepoint back leaves the value
  the outer part of the transaction set.

Outside a transaction nothing is marked and nothing is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


class _Mark:
    __slots__ = ("name", "savepoints", "value")

    def __init__(self, name: str, value: Any, savepoints: set[Any]) -> None:
        self.name = name
        self.value = value
        self.savepoints = savepoints

    def __call__(self) -> None:
        """Run at commit: the transaction is over, and the mark with it."""

    # Django names a failing hook by its qualified name in its log.
    __qualname__ = "transaction mark"


@dataclass
class _Standing:
    """The latest mark of each name, as of the connection's list of commit hooks.

    Django replaces that list (never edits it in place) when it drops hooks: at a
    savepoint's rollback, a commit, a rollback. The same list object therefore
    means that no mark was dropped since it was read, and a scan is needed only
    after one of those: a transaction that sets many marks pays nothing per mark.
    """

    hooks: list[Any]
    latest: dict[str, _Mark] = field(default_factory=dict)


_ATTRIBUTE = "leadrecord_transaction_marks"


def _standing(connection: Any) -> _Standing:
    hooks = connection.run_on_commit
    standing: _Standing | None = getattr(connection, _ATTRIBUTE, None)
    if standing is not None and standing.hooks is hooks:
        return standing
    standing = _Standing(hooks)
    for entry in hooks:
        hook = entry[1]  # (savepoint ids, hook, robust)
        if isinstance(hook, _Mark):
            standing.latest[hook.name] = hook
    setattr(connection, _ATTRIBUTE, standing)
    return standing


# Each function looks the connection up once: every attribute of django.db.connection
# is a lookup of the thread's connection, and a form post asks for marks dozens of times.


def transaction_mark_get(name: str) -> Any | None:
    """The value last marked ``name`` in the current transaction and still standing."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        return None
    mark = _standing(connection).latest.get(name)
    return None if mark is None else mark.value


def transaction_marks_get(*names: str) -> tuple[Any | None, ...]:
    """The values last marked ``names`` (as ``transaction_mark_get`` each, in one lookup of
    the connection: a form post's services ask several at a time, dozens of times)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        return (None,) * len(names)
    latest = _standing(connection).latest
    return tuple(None if (mark := latest.get(name)) is None else mark.value for name in names)


def transaction_mark_set(name: str, value: Any) -> None:
    """Mark ``name`` as ``value`` until the transaction ends or the current savepoint
    is rolled back."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        return
    standing = _standing(connection)
    savepoints = set(connection.savepoint_ids)
    mark = standing.latest.get(name)
    if mark is not None and mark.savepoints == savepoints:
        mark.value = value
        return
    mark = _Mark(name, value, savepoints)
    connection.on_commit(mark)
    standing.latest[name] = mark


def transaction_marks_forget(name: str) -> None:
    """Forget every value marked ``name`` in the current transaction (it changed): the
    next reader asks the database again."""
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        return
    for entry in connection.run_on_commit:
        hook = entry[1]
        if isinstance(hook, _Mark) and hook.name == name:
            hook.value = None
