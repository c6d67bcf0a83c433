"""Appending to the ledger and verifying its chain.

Every write service calls ``ledger_append`` (or ``ledger_append_many`` for a
batch) inside its own ``transaction.atomic`` block, so the change and its
record commit or roll back together.

Concurrent appends are serialized by a transaction-scoped lock (an advisory
lock on PostgreSQL; SQLite's IMMEDIATE transactions already hold the single
write lock), so the chain stays linear: each entry's ``seq`` is the previous
one's plus one and its ``prev_hash`` is the previous one's ``hash``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import OperationalError, connection
from django.db.models import Subquery
from django.utils import timezone
from psycopg2.extras import Json

from .bulk import copy_escape, copy_line, copy_lines, rows_insert
from .models import ActorKind, LedgerAction, LedgerEntry
from .prepared import as_prepared, prepared_forget, prepared_name
from .roles import Role, user_has_role
from .transaction_marks import transaction_mark_get, transaction_mark_set, transaction_marks_get

GENESIS_HASH = "0" * 64
# Any fixed 64-bit number names the advisory lock; this one spells "LEDGER".
_POSTGRES_LEDGER_LOCK_KEY = 0x4C4544474552
# What the current transaction knows of the ledger (leadrecord.transaction_marks).
_LOCK_MARK = "ledger.lock"
_HEAD_MARK = "ledger.head"
_DEFERRAL_MARK = "ledger.deferral"
_PENDING_MARK = "ledger.pending"
# How long a deferring transaction waits for the lock at its flush before it gives way
# and is redone the ordinary way. Below PostgreSQL's deadlock_timeout (1 s by default):
# a writer that holds the lock and waits on a row this transaction inserted (the same
# new email) is then never the one PostgreSQL cancels.
DEFERRED_LOCK_WAIT_MS = 400


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, an integration (an API client user) or the system."""

    kind: str
    label: str
    user_id: int | None = None

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(kind=ActorKind.SYSTEM, label=label)

    @classmethod
    def person(cls, contact_id: int | None, via: str) -> Actor:
        """The person themself, through a public page (``via``: a form's slug, the portal).

        The label names no personal value: the ledger keeps it in plain."""
        who = f"contact #{contact_id}" if contact_id is not None else "a person"
        return cls(kind=ActorKind.PERSON, label=f"{who} via {via}"[:150])

    @classmethod
    def of(cls, user: AbstractBaseUser | AnonymousUser | None) -> Actor:
        if user is None or not user.is_authenticated:
            return cls.system()
        kind = ActorKind.INTEGRATION if user_has_role(user, Role.INTEGRATION) else ActorKind.USER
        return cls(kind=kind, label=user.get_username(), user_id=user.pk)


@dataclass
class LedgerDraft:
    """One entry to append: everything but its place in the chain."""

    actor: Actor
    action: str
    subject_type: str
    subject_id: str | int
    contact_id: int | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    occurred_at: datetime | None = None


@functools.lru_cache(maxsize=4096)
def _timestamp(value: datetime) -> str:
    # Cached: a batch's entries share their recorded time and often their occurred time.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# The ledger's columns: the hash covers every one but the last (the hash itself),
# in this order. The one list of them, for the hash, COPY, INSERT and verify.
LEDGER_COLUMNS = (
    "seq",
    "occurred_at",
    "recorded_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "subject_type",
    "subject_id",
    "contact_id",
    "before",
    "after",
    "reason",
    "prev_hash",
    "hash",
)
# An entry's body: what it says, before its place in the chain (seq, prev_hash) is known.
_BODY_COLUMNS = LEDGER_COLUMNS[1:-2]
# The body's leading plain values (before, after and reason follow them).
_SCALAR_COLUMNS = _BODY_COLUMNS[:-3]
# Where before and after sit in an entry's body (JSON columns).
_JSON_POSITIONS = frozenset(
    index for index, name in enumerate(_BODY_COLUMNS) if name in ("before", "after")
)

_ACTIONS = frozenset(LedgerAction.values)

# The canonical JSON of the hash: sorted keys, no spaces, text as is. One
# encoder for every entry (json.dumps with options builds one per call).
_canonical_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False
).encode


def _canonical_body(scalars: Sequence[Any], before_json: str, after_json: str, reason: str) -> str:
    """The canonical JSON of an entry's body, without the array's brackets.

    ``scalars`` are the values of ``_SCALAR_COLUMNS`` in order, times as
    ``_timestamp`` text; ``before_json`` and ``after_json`` are the canonical
    JSON of those columns ("null" for none), passed in encoded so that a bulk
    writer encodes each once for the hash and for COPY alike.
    """
    return (
        f"{_canonical_encode(scalars)[1:-1]},{before_json},{after_json},{_canonical_encode(reason)}"
    )


def _chain_hash(seq: int, body: str, prev_hash: str) -> str:
    """SHA-256 of the canonical JSON array ``[seq, *body, prev_hash]``.

    The one definition of what an entry's hash covers. ``_INSERT_ONE_SQL``
    builds the same text in SQL around the same body (a property test holds
    the two to it).
    """
    return hashlib.sha256(f'[{seq},{body},"{prev_hash}"]'.encode()).hexdigest()


def ledger_entry_hash(
    *,
    seq: int,
    occurred_at: datetime,
    recorded_at: datetime,
    actor_kind: str,
    actor_id: int | None,
    actor_label: str,
    action: str,
    subject_type: str,
    subject_id: str,
    contact_id: int | None,
    before: Any,
    after: Any,
    reason: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of every hashed column of the entry."""
    scalars = [
        _timestamp(occurred_at),
        _timestamp(recorded_at),
        actor_kind,
        actor_id,
        actor_label,
        action,
        subject_type,
        subject_id,
        contact_id,
    ]
    body = _canonical_body(scalars, _canonical_encode(before), _canonical_encode(after), reason)
    return _chain_hash(seq, body, prev_hash)


def _lock_and_read_head() -> tuple[int, str]:
    """Take the ledger lock for the rest of the transaction; return the head.

    The head an earlier append of this transaction left is still the head: no one
    else appends while the lock is held (see ``_head_remember``).
    """
    ledger_lock()
    head = transaction_mark_get(_HEAD_MARK)
    if head is not None:
        return head
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq, hash FROM {LedgerEntry._meta.db_table} ORDER BY seq DESC LIMIT 1"  # noqa: S608
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def _head_remember(seq: int, entry_hash: str) -> None:
    """Remember the head this transaction just appended, for its next batch.

    Only ever set under the ledger lock, so only this transaction could move the
    head until it ends; a savepoint rolled back forgets what was set in it (its
    entries are gone), leaving the head as it was before it.
    """
    transaction_mark_set(_HEAD_MARK, (seq, entry_hash))


def ledger_head_seq() -> int:
    """The last entry's seq (0 for an empty ledger), read without the lock."""
    # Every form post by a new person asks this (ledger_deferred): no ORM query building.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq FROM {LedgerEntry._meta.db_table} ORDER BY seq DESC LIMIT 1"  # noqa: S608
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def ledger_actions_since(seq: int, actions: Sequence[str]) -> bool:
    """Whether any entry after ``seq`` records one of ``actions``.

    A writer that read the record before taking the lock asks this after
    taking it: every change is on the ledger, so no such entry means none
    of those changes happened in between.
    """
    # Bounded above by the head too: PostgreSQL estimates a two-sided range as
    # small even without statistics, and walks the primary key over the few
    # recent entries. With ``seq > n`` alone, a ledger not yet analyzed (one
    # that grew fast) was scanned in full, under the lock.
    head = LedgerEntry.objects.order_by("-seq").values("seq")[:1]
    return LedgerEntry.objects.filter(
        seq__gt=seq, seq__lte=Subquery(head), action__in=actions
    ).exists()


def ledger_lock() -> None:
    """Take the ledger lock now, for the rest of the caller's transaction.

    A service that must check-then-write without a race (is this external id
    new?) takes it first; appending later in the same transaction re-enters it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_lock must run inside the writing service's transaction")
    # Taken once per transaction: a form sent runs several services that each take
    # it, and each time was a round trip. Re-entering it is what the database would
    # do anyway; the mark goes with the transaction, and with a savepoint that is
    # rolled back (PostgreSQL releases a lock taken in it).
    if transaction_mark_get(_LOCK_MARK):
        return
    if transaction_mark_get(_DEFERRAL_MARK) is not None:
        # A deferring transaction that needs the lock now (a check that cannot wait
        # for the flush): its entries so far go in now, and it goes on undeferred.
        _deferred_flush()
        return
    # A PostgreSQL feature, not a speed-up: the advisory lock serialises writers across
    # processes. SQLite's IMMEDIATE transactions already hold its single write lock.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POSTGRES_LEDGER_LOCK_KEY])
    transaction_mark_set(_LOCK_MARK, True)


def ledger_lock_or_recheck(actions: Collection[str]) -> None:
    """Take the ledger lock now, as ``ledger_lock``; or, in a transaction that defers
    its entries (``ledger_deferred``), leave it to the flush, which first checks that
    none of ``actions`` was recorded since the transaction began to defer.

    For a check-then-write that read the record without the lock: ``actions`` are the
    changes that would alter what it read (an erasure, a ruleset activated). Every
    change is on the ledger, so none of them recorded meanwhile means the check still
    holds; one recorded undoes the transaction (``LedgerRedo``).
    """
    deferral, locked = transaction_marks_get(_DEFERRAL_MARK, _LOCK_MARK)
    if deferral is None or locked:
        ledger_lock()
        return
    deferral.recheck.update(actions)


def ledger_deferred_recheck(actions: Collection[str]) -> None:
    """In a transaction that defers its entries, have the flush check ``actions`` too
    (``ledger_lock_or_recheck``); otherwise nothing."""
    deferral, locked = transaction_marks_get(_DEFERRAL_MARK, _LOCK_MARK)
    if deferral is not None and not locked:
        deferral.recheck.update(actions)


def ledger_lock_state() -> tuple[bool, bool]:
    """Whether this transaction defers its entries (``ledger_deferring``) and whether it
    holds the ledger lock (``ledger_lock_held``), in one lookup of the transaction's marks."""
    deferral, locked = transaction_marks_get(_DEFERRAL_MARK, _LOCK_MARK)
    return deferral is not None and not locked, bool(locked)


def ledger_deferring() -> bool:
    """Whether this transaction defers its entries (``ledger_deferred``) and has not
    flushed them yet."""
    return ledger_lock_state()[0]


def ledger_lock_held() -> bool:
    """Whether this transaction holds the ledger lock: then nothing on the record that
    only a writer under the lock changes (the head, the active ruleset) changes but by
    this transaction."""
    return bool(transaction_mark_get(_LOCK_MARK))


@dataclass(frozen=True)
class PreparedEntry:
    """An entry made ready to chain: everything but its seq, previous hash and hash.

    Preparing (serializing and encoding) needs no lock, so a bulk writer does
    it before taking the ledger lock; chaining under the lock is then one
    SHA-256 and a string join per entry.
    """

    values: list[Any]  # occurred_at .. reason, as stored
    canonical: str  # the hashed JSON of those values, without brackets
    copy_text: str  # those values as COPY text (PostgreSQL, unless deferred), else ""


def ledger_prepare(drafts: Sequence[LedgerDraft]) -> list[PreparedEntry]:
    recorded_at = timezone.now()
    recorded_text = _timestamp(recorded_at)
    # COPY text only where the entries go in by COPY (PostgreSQL), which
    # bench/ingest.py's bulk events need; the embedded SQLite default inserts rows, and
    # a deferring transaction's flush inserts them from their canonical text.
    postgres = connection.vendor == "postgresql" and not ledger_deferring()
    prepared = []
    for draft in drafts:
        if draft.action not in _ACTIONS:
            # A programming error, not bad input: every writer names a LedgerAction.
            raise ValueError(f"{draft.action!r} is not a LedgerAction")
        occurred_at = draft.occurred_at or recorded_at
        occurred_text = _timestamp(occurred_at)
        actor = draft.actor
        scalars = [
            occurred_text,
            recorded_text,
            str(actor.kind),
            actor.user_id,
            actor.label,
            str(draft.action),
            draft.subject_type,
            str(draft.subject_id),
            draft.contact_id,
        ]
        # Many entries have no before (or after): skip the encoder for them.
        before = "null" if draft.before is None else _canonical_encode(draft.before)
        after = "null" if draft.after is None else _canonical_encode(draft.after)
        canonical = _canonical_body(scalars, before, after, draft.reason)
        copy_text = ""
        if postgres:
            copy_text = _copy_body(
                scalars,
                None if draft.before is None else before,
                None if draft.after is None else after,
                draft.reason,
            )
        values = [
            occurred_at,
            recorded_at,
            *scalars[2:],
            draft.before,
            draft.after,
            draft.reason,
        ]
        prepared.append(PreparedEntry(values, canonical, copy_text))
    return prepared


def _copy_body(
    scalars: Sequence[Any], before_json: str | None, after_json: str | None, reason: str
) -> str:
    """An entry's body as COPY text: ``scalars`` as in ``_canonical_body``, ``before`` and
    ``after`` as their canonical JSON (None for none)."""
    return "\t".join(
        [
            copy_line(scalars),
            "\\N" if before_json is None else copy_escape(before_json),
            "\\N" if after_json is None else copy_escape(after_json),
            copy_escape(reason),
        ]
    )


def _copy_text(values: Sequence[Any]) -> str:
    """An entry's body as COPY text, from its stored values: for an entry prepared while
    its transaction deferred (``ledger_prepare`` leaves that text out) that goes in by
    COPY after all."""
    occurred_at, recorded_at, *scalars, before, after, reason = values
    return _copy_body(
        [_timestamp(occurred_at), _timestamp(recorded_at), *scalars],
        None if before is None else _canonical_encode(before),
        None if after is None else _canonical_encode(after),
        reason,
    )


def ledger_append_prepared(
    prepared: Sequence[PreparedEntry], *, return_entries: bool = False
) -> list[LedgerEntry]:
    """Chain and insert prepared entries, taking the ledger lock (inside a transaction)."""
    if not prepared:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_append must run inside the writing service's transaction")
    if ledger_deferring():
        return _deferred_collect(prepared, return_entries=return_entries)
    # PostgreSQL: one entry in one statement, and a batch by COPY, which bench/ingest.py's
    # single and bulk requests need; elsewhere (the embedded SQLite default) the same
    # rows, chained the same way, by bulk insert.
    postgres = connection.vendor == "postgresql"
    if postgres and len(prepared) == 1:
        appended = _append_one_postgres(prepared[0], return_entry=True)
        _head_remember(appended[0].seq, appended[0].hash)
        _watchers_notify(prepared, appended[0].seq)
        return appended if return_entries else []
    seq, prev_hash = _lock_and_read_head()
    return _chain_and_insert(prepared, seq, prev_hash, return_entries=return_entries)


def _chain_and_insert(
    prepared: Sequence[PreparedEntry], seq: int, prev_hash: str, *, return_entries: bool
) -> list[LedgerEntry]:
    """Chain ``prepared`` onto the head (``seq``, ``prev_hash``) and insert them, under
    the lock; the watchers are told."""
    postgres = connection.vendor == "postgresql"
    first_seq = seq + 1
    rows: list[list[Any]] = []
    lines: list[str] = []
    for entry in prepared:
        seq += 1
        entry_hash = _chain_hash(seq, entry.canonical, prev_hash)
        if postgres:
            copy_text = entry.copy_text or _copy_text(entry.values)
            lines.append(f"{seq}\t{copy_text}\t{prev_hash}\t{entry_hash}\n")
        if return_entries or not postgres:
            rows.append([seq, *entry.values, prev_hash, entry_hash])
        prev_hash = entry_hash
    if postgres:
        copy_lines(LedgerEntry, LEDGER_COLUMNS, lines)
    else:
        rows_insert(LedgerEntry, LEDGER_COLUMNS, rows, json_columns=("before", "after"))
    _head_remember(seq, prev_hash)
    _watchers_notify(prepared, first_seq)
    if not return_entries:
        return []
    return [LedgerEntry(**dict(zip(LEDGER_COLUMNS, row, strict=True))) for row in rows]


# --- deferred entries: chained at the end of the transaction -----------------------


class LedgerRedo(Exception):
    """Something a deferring transaction read without the lock may have changed before
    its flush (``ledger_lock_or_recheck``), or the lock could not be had in time: the
    transaction is undone, and its caller runs it again the ordinary way."""


@dataclass
class _Deferral:
    """A transaction deferring its entries: the head it began at and what its flush checks."""

    seq_seen: int
    recheck: set[str]


# The ledger's head seq (0 when empty) as a scalar subquery, for a writer that reads it
# in a query of its own before deferring (``ledger_deferred(head_seq=...)``).
LEDGER_HEAD_SEQ_SQL = (
    f"COALESCE((SELECT seq FROM {LedgerEntry._meta.db_table} "  # noqa: S608 -- table name
    "ORDER BY seq DESC LIMIT 1), 0)"
)


@contextmanager
def ledger_deferred(*, head_seq: int | None = None) -> Iterator[bool]:
    """Inside a writing transaction: collect its entries and chain them at the block's
    end, under the lock, in one batch; yields whether it defers.

    Everything the transaction writes before then is written without the lock, so
    other writers do not wait on it. Each entry is prepared when appended (its
    recorded and occurred times fixed then, so it says what it would have said);
    ``ledger_append`` answers entries without a seq, which nothing in a deferring
    transaction may read. A service that checks-then-writes calls
    ``ledger_lock_or_recheck`` (or ``ledger_deferred_recheck``) with the actions that
    would change its answer; the flush takes the lock, checks that none of them was
    recorded since the block began, and raises ``LedgerRedo`` (undoing the
    transaction) if one was, or if the lock cannot be had within
    ``DEFERRED_LOCK_WAIT_MS``. A plain ``ledger_lock`` inside the block flushes at once
    and the transaction goes on undeferred.

    Only for a transaction whose rows no other writer can wait on while holding the
    lock, that is rows it creates (a new person's): a row it locks or changes that
    others also lock (an existing person's) must be written under the lock, or two
    writers could each wait on the other. Nothing is deferred on SQLite (its single
    write lock is held from the start) nor when the lock is already held.

    ``head_seq``: the head as the caller read it (``LEDGER_HEAD_SEQ_SQL``, in the same
    query as, or before, everything it checks), which saves a round trip; else it is
    read here. ``ledger_deferred_flush`` flushes before the block's end.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_deferred must run inside the writing service's transaction")
    if (
        connection.vendor != "postgresql"
        or ledger_lock_held()
        or transaction_mark_get(_DEFERRAL_MARK) is not None
    ):
        yield False
        return
    seen = ledger_head_seq() if head_seq is None else head_seq
    transaction_mark_set(_DEFERRAL_MARK, _Deferral(seen, set()))
    transaction_mark_set(_PENDING_MARK, ())
    yield True
    # Not reached when the block raised: the transaction is undone with its marks.
    if ledger_deferring():
        _deferred_flush()


def _deferred_collect(
    prepared: Sequence[PreparedEntry], *, return_entries: bool
) -> list[LedgerEntry]:
    # A mark, so that entries appended in a savepoint rolled back are gone with it.
    pending = transaction_mark_get(_PENDING_MARK) or ()
    transaction_mark_set(_PENDING_MARK, (*pending, *prepared))
    if not return_entries:
        return []
    return [
        LedgerEntry(**dict(zip(_BODY_COLUMNS, entry.values, strict=True))) for entry in prepared
    ]


# The flush's one round trip. First the lock, waited for at most DEFERRED_LOCK_WAIT_MS
# (statements of their own: the next one's snapshot is taken once the lock is had, so
# it sees every entry committed before). Then, in one statement prepared once per
# connection, PostgreSQL reads the head, checks that no entry since the deferral began
# records an action to recheck, evaluates the writer's own check (ledger_deferred_flush)
# and, only if all is well, chains the entries and inserts them: each entry's hash is
# computed over exactly the text _chain_hash hashes (as _INSERT_ONE_SQL does for one),
# and its columns are read back from that same canonical JSON, so what is stored is
# what was hashed. One statement under the lock instead of a head read and a COPY.
_FLUSH_LOCK_SQL = (
    "SET LOCAL lock_timeout = %s; SELECT pg_advisory_xact_lock(%s); "
    "SET LOCAL lock_timeout TO DEFAULT"
)
_LEDGER_TABLE = LedgerEntry._meta.db_table
# Each entry's canonical JSON is parsed in ``body`` (materialized), once: parsed in a
# subquery of the insert, the planner would pull it up into each column's expression.
_FLUSH_CHAIN_SQL = (
    f"WITH RECURSIVE head AS ((SELECT seq, hash::text FROM {_LEDGER_TABLE} "  # noqa: S608 -- table name
    "ORDER BY seq DESC LIMIT 1) UNION ALL (SELECT 0, %s::text) ORDER BY 1 DESC LIMIT 1), "
    "state AS (SELECT head.seq, head.hash, EXISTS (SELECT 1 FROM "
    f"{_LEDGER_TABLE} AS entry WHERE entry.seq > %s::bigint AND entry.seq <= head.seq "
    "AND entry.action = ANY(%s::text[])) AS changed, {check} AS checked FROM head), "
    "body AS MATERIALIZED (SELECT number, canonical, ('[' || canonical || ']')::jsonb AS b "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS body (canonical, number)), "
    "chain (number, seq, prev_hash, hash) AS ("
    "SELECT 0::bigint, seq, NULL::text, hash FROM state WHERE checked AND NOT changed "
    "UNION ALL SELECT body.number, chain.seq + 1, chain.hash, encode(sha256(convert_to("
    "'[' || (chain.seq + 1) || ',' || body.canonical || ',\"' || chain.hash || '\"]', "
    "'UTF8')), 'hex') FROM chain JOIN body ON body.number = chain.number + 1), "
    f"written AS (INSERT INTO {_LEDGER_TABLE} ({', '.join(LEDGER_COLUMNS)}) "
    "SELECT chain.seq, (b->>0)::timestamptz, (b->>1)::timestamptz, b->>2, (b->>3)::bigint, "
    "b->>4, b->>5, b->>6, b->>7, (b->>8)::bigint, NULLIF(b->9, 'null'::jsonb), "
    "NULLIF(b->10, 'null'::jsonb), b->>11, chain.prev_hash, chain.hash FROM chain JOIN "
    "body ON body.number = chain.number) "
    "SELECT state.seq, state.changed, state.checked, last.seq, last.hash FROM state "
    "LEFT JOIN (SELECT seq, hash FROM chain ORDER BY number DESC LIMIT 1) AS last ON TRUE"
)


@functools.lru_cache(maxsize=64)
def _flush_statement(check: str) -> tuple[str, str]:
    """The flush's chaining statement with the writer's ``check``, and its prepared name
    (made from its text)."""
    sql = _FLUSH_CHAIN_SQL.format(check=check)
    return sql, prepared_name("leadrecord_ledger_flush", sql)


# lock_not_available (lock_timeout), deadlock_detected.
_GIVE_WAY_CODES = frozenset({"55P03", "40P01"})


def ledger_deferred_flush(
    *,
    first: str = "",
    first_params: Sequence[Any] = (),
    check: str = "",
    check_params: Sequence[Any] = (),
) -> bool:
    """In a transaction that defers its entries: flush them now (as at the end of
    ``ledger_deferred``'s block), sending ``first`` (statements writing the last rows,
    without the lock) in the same round trip; raises ``LedgerRedo`` as the flush does.

    ``check``: a boolean SQL expression read after ``first`` (say, that a row it
    inserts under a condition is there). False: nothing is chained, and the caller
    must undo the transaction (raise); else True, the lock held and the entries chained.
    """
    if not ledger_deferring():
        raise RuntimeError("no deferral to flush")
    return _deferred_flush(
        first=first, first_params=first_params, check=check, check_params=check_params
    )


def _deferred_flush(
    *,
    first: str = "",
    first_params: Sequence[Any] = (),
    check: str = "",
    check_params: Sequence[Any] = (),
) -> bool:
    """Take the lock, recheck, and chain the deferred entries (see ``ledger_deferred``)."""
    deferral = transaction_mark_get(_DEFERRAL_MARK)
    if not isinstance(deferral, _Deferral):
        raise RuntimeError("no deferral to flush")
    pending: tuple[PreparedEntry, ...] = transaction_mark_get(_PENDING_MARK) or ()
    chain_sql, chain_name = _flush_statement(check or "TRUE")
    chain_params = [
        GENESIS_HASH,
        deferral.seq_seen,
        sorted(deferral.recheck),
        *check_params,
        [entry.canonical for entry in pending],
    ]
    chain_run, ran = as_prepared(chain_name, chain_sql, len(chain_params))
    sql = f"{_FLUSH_LOCK_SQL}; {chain_run}"
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f"{first}; {sql}" if first else sql,
                [
                    *first_params,
                    f"{DEFERRED_LOCK_WAIT_MS}ms",
                    _POSTGRES_LEDGER_LOCK_KEY,
                    *chain_params,
                ],
            )
            head_seq, changed, checked, last_seq, last_hash = cursor.fetchone()
    except BaseException as error:
        # The statement may have been prepared before whatever failed: which ones are
        # prepared is read again next time.
        prepared_forget()
        # Not had in time, or PostgreSQL found a deadlock: undone, and redone with the
        # lock taken first. Any other failure is the caller's.
        if isinstance(error, OperationalError) and (
            getattr(error.__cause__, "pgcode", None) in _GIVE_WAY_CODES
        ):
            raise LedgerRedo("the ledger lock was not had in time") from error
        raise
    ran()
    if changed:
        raise LedgerRedo("what this transaction read changed before its flush")
    if not checked:
        return False
    if last_seq != head_seq + len(pending):
        raise RuntimeError(f"the flush chained {last_seq - head_seq} entries of {len(pending)}")
    transaction_mark_set(_LOCK_MARK, True)
    transaction_mark_set(_DEFERRAL_MARK, None)
    transaction_mark_set(_PENDING_MARK, None)
    _head_remember(last_seq, last_hash)
    if pending:
        _watchers_notify(pending, head_seq + 1)
    return True


# --- watchers: apps above that act on entries in the writer's transaction -----------


@dataclass(frozen=True)
class LedgerWatcher:
    """An app above this package that acts on some entries as they are written.

    ``leadrecord`` imports no app, so an app registers one of these in its
    ``AppConfig.ready`` (``ledger_watch``). ``actions`` answers the actions it
    wants right now, and is asked on every append, so it must be cheap; only
    when an appended entry's action is among them is ``written`` called, with
    those entries, inside the writer's transaction and under the ledger lock:
    its writes commit or roll back with the change, and an error in it undoes
    the whole write.
    """

    name: str
    actions: Callable[[], Collection[str]]
    written: Callable[[list[WrittenEntry]], None]


class WrittenEntry:
    """An entry just appended, as a watcher reads it: its seq and its body's columns
    (``occurred_at`` .. ``reason``, as attributes).

    Not a ``LedgerEntry``, nor a copy of each value: bulk ingestion hands thousands of
    these over, and a model instance each cost more than the watcher's own work.
    """

    __slots__ = ("seq", "values")

    if TYPE_CHECKING:
        occurred_at: datetime
        recorded_at: datetime
        actor_kind: str
        actor_id: int | None
        actor_label: str
        action: str
        subject_type: str
        subject_id: str
        contact_id: int | None
        before: Any
        after: Any
        reason: str

    def __init__(self, seq: int, values: Sequence[Any]) -> None:
        self.seq = seq
        self.values = values


def _column(position: int) -> property:
    def read(entry: WrittenEntry) -> Any:
        return entry.values[position]

    return property(read)


for _position, _name in enumerate(_BODY_COLUMNS):
    setattr(WrittenEntry, _name, _column(_position))


_watchers: dict[str, LedgerWatcher] = {}
_ACTION_POSITION = _BODY_COLUMNS.index("action")


def ledger_watch(watcher: LedgerWatcher) -> None:
    """Register ``watcher`` (again under the same name: replaced)."""
    _watchers[watcher.name] = watcher


def _watchers_notify(prepared: Sequence[PreparedEntry], first_seq: int) -> None:
    for watcher in list(_watchers.values()):
        wanted = watcher.actions()
        if not wanted:
            continue
        entries = [
            WrittenEntry(first_seq + index, entry.values)
            for index, entry in enumerate(prepared)
            if entry.values[_ACTION_POSITION] in wanted
        ]
        if entries:
            watcher.written(entries)


# One entry chained by PostgreSQL itself: the head is read and the hash computed in
# the INSERT, which runs after the lock is taken (so it sees the latest head), over
# exactly the text _chain_hash hashes. One round trip under the lock
# instead of a head read and a COPY (two); most services append a single entry.
_INSERT_ONE_SQL = (
    f"WITH head AS ((SELECT seq, hash FROM {LedgerEntry._meta.db_table} "  # noqa: S608
    "ORDER BY seq DESC LIMIT 1) UNION ALL (SELECT 0, %s) ORDER BY 1 DESC LIMIT 1) "
    f"INSERT INTO {LedgerEntry._meta.db_table} ({', '.join(LEDGER_COLUMNS)}) "
    f"SELECT head.seq + 1, {', '.join(['%s'] * len(_BODY_COLUMNS))}, head.hash, "
    "encode(sha256(convert_to('[' || (head.seq + 1) || ',' || %s || ',\"' || head.hash || '\"]', "
    "'UTF8')), 'hex') FROM head RETURNING seq, prev_hash, hash"
)


def _append_one_postgres(entry: PreparedEntry, *, return_entry: bool) -> list[LedgerEntry]:
    values = [
        Json(value) if index in _JSON_POSITIONS and value is not None else value
        for index, value in enumerate(entry.values)
    ]
    ledger_lock()
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ONE_SQL, [GENESIS_HASH, *values, entry.canonical])
        seq, prev_hash, entry_hash = cursor.fetchone()
    if not return_entry:
        return []
    row = [seq, *entry.values, prev_hash, entry_hash]
    return [LedgerEntry(**dict(zip(LEDGER_COLUMNS, row, strict=True)))]


def ledger_append_many(
    drafts: Sequence[LedgerDraft], *, return_entries: bool = True
) -> list[LedgerEntry]:
    """Append entries in order, chained, inside the caller's transaction.

    ``return_entries=False`` skips building model instances (the bulk path of
    event ingestion) and returns an empty list.
    """
    if not drafts:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_append must run inside the writing service's transaction")
    return ledger_append_prepared(ledger_prepare(drafts), return_entries=return_entries)


def ledger_append(
    *,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: str | int,
    contact_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    occurred_at: datetime | None = None,
) -> LedgerEntry:
    """Append one entry, chained to the last, inside the caller's transaction.

    ``action`` is a ``LedgerAction`` member (a plain string only from the event
    ingestion code, until it moves); anything else is refused.
    """
    draft = LedgerDraft(
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        contact_id=contact_id,
        before=before,
        after=after,
        reason=reason,
        occurred_at=occurred_at,
    )
    return ledger_append_many([draft])[0]


@dataclass(frozen=True)
class LedgerVerification:
    entries: int
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def _ledger_rows(chunk_size: int) -> Iterator[dict[str, Any]]:
    yield from LedgerEntry.objects.order_by("seq").values(*LEDGER_COLUMNS).iterator(chunk_size)


def ledger_verify(*, chunk_size: int = 5000) -> LedgerVerification:
    """Recompute the chain from the first entry; report the first that fails."""
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for row in _ledger_rows(chunk_size):
        seq = row["seq"]
        if seq != expected_seq:
            return LedgerVerification(count, expected_seq, f"entry {expected_seq} is missing")
        if row["prev_hash"] != prev_hash:
            return LedgerVerification(count, seq, "its previous hash does not match entry before")
        fields = {k: v for k, v in row.items() if k != "hash"}
        if ledger_entry_hash(**fields) != row["hash"]:
            return LedgerVerification(count, seq, "its content does not match its hash")
        prev_hash = row["hash"]
        expected_seq += 1
        count += 1
    return LedgerVerification(count)
