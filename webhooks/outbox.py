"""The transactional outbox: webhook messages written beside the ledger entries they come from.

``outbox_write`` is the ledger's watcher (registered in ``WebhooksConfig.ready``): it
runs inside the writing service's transaction, under the ledger lock, so a change and
its messages commit or roll back together, and each endpoint's sequence numbers are
given out in ledger order. Messages of the event types built from their entry
(``webhooks.events.BUILT_FROM_ENTRY``) are written without data: delivery builds it
from the entry. On PostgreSQL a batch of such entries (bulk ingest, and most single
writes) becomes each endpoint's messages by one INSERT ... SELECT from the ledger rows
just written; other batches are built here and go in by one insert. ``actions_wanted``
is asked on every append: it answers from this process's copy of the subscriptions
(``SUBSCRIPTIONS_TTL_SECONDS``), so a write that no endpoint wants costs nothing more.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg2.extras import Json, execute_values

from leadrecord.bulk import copy_escape, copy_line, copy_lines, rows_insert
from leadrecord.ledger import WrittenEntry
from leadrecord.models import LedgerAction, LedgerEntry
from leadrecord.remembered import Remembered

from .events import (
    ACTIONS_OF_EVENT,
    BUILT_FROM_ENTRY,
    EVENT_OF_ACTION_SET_BASED,
    Facts,
    event_data,
    event_type_of,
)
from .models import Endpoint, EventType, Message, MessageStatus

_table_ready = False
# How long a process trusts its copy of who subscribes to what. A change made by this
# process is seen at once; one made by another process within this long (an endpoint
# added or disabled there) may be missed or still followed here meanwhile. Reading it
# on every append instead cost a round trip per write under the ledger lock.
SUBSCRIPTIONS_TTL_SECONDS = 1.0


@dataclass(frozen=True)
class Subscriber:
    id: int
    event_types: frozenset[str]
    audience: str


@dataclass(frozen=True)
class _Subscriptions:
    subscribers: tuple[Subscriber, ...]
    actions: frozenset[str]


_subscriptions: Remembered[str, _Subscriptions] = Remembered(SUBSCRIPTIONS_TTL_SECONDS)


def _endpoints_table_ready() -> bool:
    """Whether this app's tables exist: migrations of the apps below append to the ledger
    before this app's own migration has run."""
    global _table_ready
    if not _table_ready:
        _table_ready = Endpoint._meta.db_table in connection.introspection.table_names()
    return _table_ready


def subscriptions_forget() -> None:
    """Read the endpoints again at the next append (after a change to one)."""
    _subscriptions.forget()


def _subscriptions_now() -> _Subscriptions:
    return _subscriptions.get("enabled", _subscriptions_read)


def _subscriptions_read() -> _Subscriptions:
    subscribers = tuple(
        Subscriber(pk, frozenset(types), audience)
        for pk, types, audience in Endpoint.objects.filter(enabled=True)
        .order_by("id")
        .values_list("id", "event_types", "audience")
    )
    actions = frozenset(
        ACTIONS_OF_EVENT[name]
        for subscriber in subscribers
        for name in subscriber.event_types
        if name in ACTIONS_OF_EVENT
    )
    if LedgerAction.DISCLOSURE_RECORD in actions:
        # A withdrawal empties the value of a recorded disclosure's pending messages.
        actions |= {LedgerAction.DISCLOSURE_WITHDRAW}
    return _Subscriptions(subscribers, actions)


def actions_wanted() -> frozenset[str]:
    """The ledger actions some enabled endpoint wants an event of."""
    if not _endpoints_table_ready():
        return frozenset()
    return _subscriptions_now().actions


def _id_stamp() -> str:
    """A message id's first part: the time (microseconds, hex), so ids sort by when they
    were written and new ones land at the end of the primary key's index."""
    return f"msg_{time.time_ns() // 1000:014x}"


def message_ids_new(count: int) -> list[str]:
    """Stable message ids (``webhook-id``): receivers de-duplicate by them. The time
    first, then 48 random bits each (drawn at once: a batch's thousands of draws were most
    of its ids' cost)."""
    stamp = _id_stamp()
    noise = secrets.token_hex(6 * count)
    return [stamp + noise[12 * index : 12 * index + 12] for index in range(count)]


# A message's values as written, but its sequence number (given out as they are inserted).
_ROW_COLUMNS = (
    "id",
    "event_type",
    "ledger_seq",
    "n",
    "contact_id",
    "timestamp",
    "data",
    "personal",
)
_POSTGRES_TYPES = ("text", "text", "bigint", "bigint", "bigint", "timestamptz", "jsonb", "jsonb")


def _messages_insert(endpoint_id: int, rows: list[list[Any]], now: datetime) -> None:
    """Insert one endpoint's new messages, numbering them after its last sequence number.

    For one message (most writes), the endpoint's counter moves and the message goes in
    by one statement on PostgreSQL (a writer holds the ledger lock meanwhile, and
    bench/ingest.py's single requests pay each round trip); elsewhere, and for a batch,
    the counter's UPDATE ... RETURNING, then the rows. An endpoint disabled meanwhile
    gets none.
    """
    count = len(rows)
    endpoints = connection.ops.quote_name(Endpoint._meta.db_table)
    bump = (
        f"UPDATE {endpoints} SET last_sequence = last_sequence + %s "  # noqa: S608
        "WHERE id = %s AND enabled RETURNING last_sequence"
    )
    if connection.vendor == "postgresql" and count > 1:
        # A batch (bulk ingest): the counter, then the rows by COPY, which a VALUES list
        # of a batch's size cost several times over.
        with connection.cursor() as cursor:
            cursor.execute(bump, [count, endpoint_id])
            found = cursor.fetchone()
        if found is None:
            return
        first = found[0] - count
        copy_lines(Message, _MESSAGE_COLUMNS, _copy_text(endpoint_id, first, rows, now))
        return
    if connection.vendor == "postgresql":
        messages = connection.ops.quote_name(Message._meta.db_table)
        with connection.cursor() as cursor:
            head = cursor.cursor.mogrify(
                f"WITH s AS ({bump}) INSERT INTO {messages} "  # noqa: S608
                "(id, endpoint_id, event_type, ledger_seq, sequence, contact_id, timestamp, "
                "data, personal, status, attempts, next_attempt_at, replays, created_at) "
                "SELECT v.id, %s, v.event_type, v.ledger_seq, s.last_sequence - %s + v.n, "
                "v.contact_id, v.timestamp, v.data, v.personal, %s, 0, %s, 0, %s FROM s, ",
                [count, endpoint_id, endpoint_id, count, MessageStatus.PENDING, now, now],
            ).decode()
            template = "(" + ", ".join(f"%s::{kind}" for kind in _POSTGRES_TYPES) + ")"
            adapted = [
                [*row[:6], *(Json(value) if value is not None else None for value in row[6:])]
                for row in rows
            ]
            execute_values(
                cursor.cursor,
                head + f"(VALUES %s) AS v({', '.join(_ROW_COLUMNS)})",
                adapted,
                template=template,
                # One statement: the counter must move once for all of them.
                page_size=count,
            )
        return
    with connection.cursor() as cursor:
        cursor.execute(bump, [count, endpoint_id])
        found = cursor.fetchone()
    if found is None:
        return
    first = found[0] - count
    rows_insert(
        Message,
        _MESSAGE_COLUMNS,
        [
            [row[0], endpoint_id, row[1], row[2], first + row[3], row[4], row[5], row[6], row[7],
             MessageStatus.PENDING, 0, now, 0, now]
            for row in rows
        ],
    )  # fmt: skip


_MESSAGE_COLUMNS = (
    "id",
    "endpoint_id",
    "event_type",
    "ledger_seq",
    "sequence",
    "contact_id",
    "timestamp",
    "data",
    "personal",
    "status",
    "attempts",
    "next_attempt_at",
    "replays",
    "created_at",
)


def _withdrawn_values_forget(entries: list[WrittenEntry]) -> None:
    """A disclosure withdrawn is hidden from everyone from then on: its value leaves the
    messages not sent yet (they go out with its id and key only)."""
    withdrawn = [
        entry.subject_id for entry in entries if entry.action == LedgerAction.DISCLOSURE_WITHDRAW
    ]
    for disclosure_id in withdrawn:
        Message.objects.filter(
            status=MessageStatus.PENDING,
            event_type=EventType.DISCLOSURE_RECORDED,
            data__disclosure=int(disclosure_id),
            personal__isnull=False,
        ).update(personal=None)


_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _copy_text(endpoint_id: int, first: int, rows: list[list[Any]], now: datetime) -> list[str]:
    """A batch's messages as COPY lines. Built by hand rather than by ``copy_line``: a
    batch's entries share their recorded time, and everything else is an id or a choice
    (only the JSON is escaped)."""
    now_text = copy_line([now])
    times: dict[datetime, str] = {}
    lines = []
    for message_id, event_type, ledger_seq, number, contact_id, moment, data, personal in rows:
        moment_text = times.get(moment)
        if moment_text is None:
            moment_text = times[moment] = copy_line([moment])
        data_text = "\\N" if data is None else copy_escape(_json_text(data))
        personal_text = "\\N" if personal is None else copy_escape(_json_text(personal))
        contact_text = "\\N" if contact_id is None else str(contact_id)
        lines.append(
            f"{message_id}\t{endpoint_id}\t{event_type}\t{ledger_seq}\t{first + number}\t"
            f"{contact_text}\t{moment_text}\t{data_text}\t{personal_text}\t"
            f"{MessageStatus.PENDING.value}\t0\t{now_text}\t0\t{now_text}\n"
        )
    return lines


def _messages_insert_from_ledger(
    endpoint_id: int, first_seq: int, last_seq: int, event_of_action: dict[str, str]
) -> None:
    """An endpoint's messages of the entries ``first_seq`` .. ``last_seq`` (one append)
    whose actions ``event_of_action`` names, in one statement, from the ledger rows just
    written: numbered after the endpoint's counter in ledger order, the counter moved by
    as many, and no data (built from the entry when sent). No Python per entry: a bulk
    batch's thousands cost ingestion more than the insert itself. An endpoint disabled
    meanwhile gets none.
    """
    messages = connection.ops.quote_name(Message._meta.db_table)
    endpoints = connection.ops.quote_name(Endpoint._meta.db_table)
    ledger = connection.ops.quote_name(LedgerEntry._meta.db_table)
    stamp = _id_stamp()
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH m AS (INSERT INTO {messages} "  # noqa: S608
            "(id, endpoint_id, event_type, ledger_seq, sequence, contact_id, timestamp, "
            "data, personal, status, attempts, next_attempt_at, replays, created_at) "
            # The random part as message_ids_new draws it: 48 bits, 12 hex digits.
            "SELECT %s || lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'), "
            "e.id, t.event_type, l.seq, e.last_sequence + row_number() OVER (ORDER BY l.seq), "
            "l.contact_id, l.recorded_at, NULL, NULL, %s, 0, %s, 0, %s "
            f"FROM {endpoints} e, {ledger} l "
            "JOIN unnest(%s::text[], %s::text[]) AS t(action, event_type) ON t.action = l.action "
            "WHERE e.id = %s AND e.enabled AND l.seq BETWEEN %s AND %s RETURNING 1) "
            f"UPDATE {endpoints} SET last_sequence = last_sequence + (SELECT count(*) FROM m) "
            "WHERE id = %s",
            [
                stamp,
                MessageStatus.PENDING.value,
                now,
                now,
                list(event_of_action),
                list(event_of_action.values()),
                endpoint_id,
                first_seq,
                last_seq,
                endpoint_id,
            ],
        )


def _subscribers_of(event_types: set[str]) -> list[Subscriber]:
    return [
        subscriber
        for subscriber in _subscriptions_now().subscribers
        if not event_types.isdisjoint(subscriber.event_types)
    ]


def outbox_write(entries: list[WrittenEntry]) -> None:
    """Write the messages of these just-appended entries for every endpoint that wants them."""
    actions = {entry.action for entry in entries}
    if LedgerAction.DISCLOSURE_WITHDRAW in actions:
        _withdrawn_values_forget(entries)
    # On PostgreSQL, entries that are each one event built from the entry (bulk touches
    # and their new people, most single writes): each endpoint's messages by one
    # INSERT ... SELECT from the ledger rows, and nothing here per entry. Elsewhere (the
    # embedded SQLite default, or events whose data needs more than the entry), built here.
    if connection.vendor == "postgresql" and actions <= EVENT_OF_ACTION_SET_BASED.keys():
        written = _outbox_write_set_based(entries, actions)
    else:
        written = _outbox_write_built(entries)
    if written:
        from .tasks import deliveries_kick_on_commit

        deliveries_kick_on_commit()


def _outbox_write_set_based(entries: list[WrittenEntry], actions: set[str]) -> bool:
    event_of_action = {action: EVENT_OF_ACTION_SET_BASED[action] for action in actions}
    written = False
    for subscriber in _subscribers_of(set(event_of_action.values())):
        wanted = {
            action: event
            for action, event in event_of_action.items()
            if event in subscriber.event_types
        }
        _messages_insert_from_ledger(subscriber.id, entries[0].seq, entries[-1].seq, wanted)
        written = True
    return written


def _outbox_write_built(entries: list[WrittenEntry]) -> bool:
    typed = [(entry, event_type) for entry in entries if (event_type := event_type_of(entry))]
    if not typed:
        return False
    subscribers = _subscribers_of({event_type for _, event_type in typed})
    if not subscribers:
        return False
    facts = Facts.read(typed)
    now = timezone.now()
    written = False
    for subscriber in subscribers:
        rows: list[list[Any]] = []
        for entry, event_type in typed:
            if event_type not in subscriber.event_types:
                continue
            built = event_data(entry, event_type, subscriber.audience, facts)
            if built is None:
                continue
            rows.append(
                [
                    "",  # its id, below
                    event_type,
                    entry.seq,
                    len(rows) + 1,
                    entry.contact_id,
                    entry.recorded_at,
                    None if event_type in BUILT_FROM_ENTRY else built.data,
                    built.personal,
                ]
            )
        if rows:
            for row, message_id in zip(rows, message_ids_new(len(rows)), strict=True):
                row[0] = message_id
            _messages_insert(subscriber.id, rows, now)
            written = True
    return written
