"""The transactional outbox: webhook messages written beside the ledger entries they come from.

``outbox_write`` is the ledger's watcher (registered in ``WebhooksConfig.ready``): it
runs inside the writing service's transaction, under the ledger lock, so a change and
its messages commit or roll back together, and each endpoint's sequence numbers are
given out in ledger order. Messages of the event types built from their entry
(``webhooks.events.BUILT_FROM_ENTRY``) are written without data: delivery builds it
from the entry. On PostgreSQL a batch of such entries (bulk ingest, and most single
writes) becomes one range row per endpoint (``MessageRange``), holding its sequence
numbers, and delivery writes its messages out from the ledger rows
(``messages_expand``); other batches are built here and go in by one insert.
``actions_wanted`` is asked on every append: it answers from this process's copy of the
subscriptions (``SUBSCRIPTIONS_TTL_SECONDS``), so a write that no endpoint wants costs
nothing more.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import Counter
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
from .models import Endpoint, EventType, Message, MessageRange, MessageStatus

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


def _messages_insert(endpoint_id: int, rows: list[list[Any]], now: datetime) -> bool:
    """Insert one endpoint's new messages, numbering them after its last sequence number;
    whether it did.

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
            return False
        first = found[0] - count
        copy_lines(Message, _MESSAGE_COLUMNS, _copy_text(endpoint_id, first, rows, now))
        return True
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
            return bool(cursor.cursor.rowcount > 0)
    with connection.cursor() as cursor:
        cursor.execute(bump, [count, endpoint_id])
        found = cursor.fetchone()
    if found is None:
        return False
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
    return True


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


def _range_write(
    endpoint_id: int, first_seq: int, last_seq: int, event_of_action: dict[str, str], count: int
) -> bool:
    """An endpoint's ``count`` messages of the entries ``first_seq`` .. ``last_seq`` (one
    append) whose actions ``event_of_action`` names, as one range row: the endpoint's
    counter moves by as many, in one statement, and delivery writes the messages out
    (``messages_expand``). A message row each, with its four index entries, was most of
    what an endpoint cost bulk ingestion. An endpoint disabled meanwhile gets none.
    """
    ranges = connection.ops.quote_name(MessageRange._meta.db_table)
    endpoints = connection.ops.quote_name(Endpoint._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH e AS (UPDATE {endpoints} SET last_sequence = last_sequence + %s "  # noqa: S608
            "WHERE id = %s AND enabled RETURNING last_sequence) "
            f"INSERT INTO {ranges} "
            "(endpoint_id, first_seq, last_seq, events, first_sequence, count, created_at) "
            "SELECT %s, %s, %s, %s, e.last_sequence - %s + 1, %s, %s FROM e",
            [
                count,
                endpoint_id,
                endpoint_id,
                first_seq,
                last_seq,
                Json(event_of_action),
                count,
                count,
                timezone.now(),
            ],
        )
        return cursor.rowcount > 0


# Ranges written out per statement: up to this many bulk batches' messages at once.
EXPAND_RANGES = 20


def messages_expand() -> int:
    """Write out the pending ranges' messages; returns how many were written.

    Each statement takes some ranges no one else is writing out (a concurrent run skips
    them), deletes their rows and inserts their messages: numbered from each range's
    first sequence number in ledger order, with a new id each, written at the time of
    the change. One statement, so a run killed meanwhile leaves the ranges as they were,
    and a range is never written out twice. Only PostgreSQL writes ranges.
    """
    if connection.vendor != "postgresql":
        return 0
    ranges = connection.ops.quote_name(MessageRange._meta.db_table)
    messages = connection.ops.quote_name(Message._meta.db_table)
    ledger = connection.ops.quote_name(LedgerEntry._meta.db_table)
    written = 0
    while True:
        # One statement, atomic by itself (autocommit, or the caller's transaction).
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH r AS (DELETE FROM {ranges} WHERE id IN "  # noqa: S608
                f"(SELECT id FROM {ranges} ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                "RETURNING id, endpoint_id, first_seq, last_seq, events, first_sequence, "
                "created_at) "
                f"INSERT INTO {messages} "
                "(id, endpoint_id, event_type, ledger_seq, sequence, contact_id, timestamp, "
                "data, personal, status, attempts, next_attempt_at, replays, created_at) "
                # The random part as message_ids_new draws it: 48 bits, 12 hex digits.
                "SELECT %s || lpad(to_hex(floor(random() * 281474976710656)::bigint), 12, '0'), "
                "r.endpoint_id, t.event_type, l.seq, "
                "r.first_sequence - 1 + row_number() OVER (PARTITION BY r.id ORDER BY l.seq), "
                "l.contact_id, l.recorded_at, NULL, NULL, %s, 0, r.created_at, 0, r.created_at "
                f"FROM r JOIN {ledger} l ON l.seq BETWEEN r.first_seq AND r.last_seq "
                "JOIN LATERAL jsonb_each_text(r.events) AS t(action, event_type) "
                "ON t.action = l.action",
                [EXPAND_RANGES, _id_stamp(), MessageStatus.PENDING.value],
            )
            if cursor.rowcount <= 0:
                return written
            written += cursor.rowcount


def _subscribers_of(event_types: set[str]) -> list[Subscriber]:
    return [
        subscriber
        for subscriber in _subscriptions_now().subscribers
        if not event_types.isdisjoint(subscriber.event_types)
    ]


def outbox_write(entries: list[WrittenEntry]) -> None:
    """Write the messages of these just-appended entries for every endpoint that wants them."""
    # How many entries of each action: a range's count of messages, below.
    actions = Counter(entry.action for entry in entries)
    if LedgerAction.DISCLOSURE_WITHDRAW in actions:
        _withdrawn_values_forget(entries)
    # On PostgreSQL, entries that are each one event built from the entry (bulk touches
    # and their new people, most single writes): each endpoint's messages as one range
    # row, which delivery writes out, and nothing here per entry. Elsewhere (the embedded
    # SQLite default, or events whose data needs more than the entry), built here.
    if connection.vendor == "postgresql" and actions.keys() <= EVENT_OF_ACTION_SET_BASED.keys():
        written = _outbox_write_set_based(entries, actions)
    else:
        written = _outbox_write_built(entries)
    if written:
        from .tasks import deliveries_kick_on_commit

        deliveries_kick_on_commit()


def _outbox_write_set_based(entries: list[WrittenEntry], actions: Counter[str]) -> bool:
    event_of_action = {action: EVENT_OF_ACTION_SET_BASED[action] for action in actions}
    written = False
    for subscriber in _subscribers_of(set(event_of_action.values())):
        wanted = {
            action: event
            for action, event in event_of_action.items()
            if event in subscriber.event_types
        }
        count = sum(actions[action] for action in wanted)
        if count == 1:
            # One message (most single writes): the row itself, by one statement as a
            # range would be, and nothing for delivery to write out first.
            entry = next(entry for entry in entries if entry.action in wanted)
            row = [
                message_ids_new(1)[0],
                wanted[entry.action],
                entry.seq,
                1,
                entry.contact_id,
                entry.recorded_at,
                None,
                None,
            ]
            written = _messages_insert(subscriber.id, [row], timezone.now()) or written
        elif _range_write(subscriber.id, entries[0].seq, entries[-1].seq, wanted, count):
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
            written = _messages_insert(subscriber.id, rows, now) or written
    return written
