"""The transactional outbox: webhook messages written beside the ledger entries they come from.

``outbox_write`` is the ledger's watcher (registered in ``WebhooksConfig.ready``): it
runs inside the writing service's transaction, under the ledger lock, so a change and
its messages commit or roll back together, and each endpoint's sequence numbers are
given out in ledger order. A batch of entries (bulk ingest) becomes its messages in
one insert. ``actions_wanted`` is asked on every append: one small query over the
enabled endpoints, so a write that no endpoint wants costs nothing more.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from typing import Any

from django.db import connection
from django.utils import timezone

from leadrecord.bulk import rows_copy
from leadrecord.models import LedgerEntry

from .events import ACTIONS_OF_EVENT, Facts, event_data, event_type_of
from .models import Endpoint, Message, MessageStatus

_table_ready = False


def _endpoints_table_ready() -> bool:
    """Whether this app's tables exist: migrations of the apps below append to the ledger
    before this app's own migration has run."""
    global _table_ready
    if not _table_ready:
        _table_ready = Endpoint._meta.db_table in connection.introspection.table_names()
    return _table_ready


def actions_wanted() -> frozenset[str]:
    """The ledger actions some enabled endpoint wants an event of."""
    if not _endpoints_table_ready():
        return frozenset()
    wanted: set[str] = set()
    for event_types in Endpoint.objects.filter(enabled=True).values_list("event_types", flat=True):
        wanted.update(ACTIONS_OF_EVENT[name] for name in event_types if name in ACTIONS_OF_EVENT)
    return frozenset(wanted)


def message_id_new() -> str:
    """A message's stable id (``webhook-id``): receivers de-duplicate by it."""
    return "msg_" + secrets.token_hex(12)


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


def outbox_write(entries: list[LedgerEntry]) -> None:
    """Write the messages of these just-appended entries for every endpoint that wants them."""
    typed = [(entry, event_type) for entry in entries if (event_type := event_type_of(entry))]
    if not typed:
        return
    wanted_types = {event_type for _, event_type in typed}
    endpoints = [
        endpoint
        for endpoint in Endpoint.objects.filter(enabled=True).only(
            "id", "event_types", "audience", "last_sequence"
        )
        if wanted_types.intersection(endpoint.event_types)
    ]
    if not endpoints:
        return
    facts = Facts.read(typed)
    now = timezone.now()
    rows: list[list[Any]] = []
    counts: dict[int, int] = defaultdict(int)
    for endpoint in endpoints:
        subscribed = set(endpoint.event_types)
        sequence = endpoint.last_sequence
        for entry, event_type in typed:
            if event_type not in subscribed:
                continue
            built = event_data(entry, event_type, endpoint.audience, facts)
            if built is None:
                continue
            sequence += 1
            counts[endpoint.pk] += 1
            rows.append(
                [
                    message_id_new(),
                    endpoint.pk,
                    event_type,
                    entry.seq,
                    sequence,
                    entry.contact_id,
                    entry.recorded_at,
                    built.data,
                    built.personal,
                    MessageStatus.PENDING,
                    0,
                    now,
                    0,
                    now,
                ]
            )
    if not rows:
        return
    # Under the ledger lock every writer comes one after another, so the numbers
    # read above are still the last ones given.
    for endpoint in endpoints:
        if counts[endpoint.pk]:
            Endpoint.objects.filter(pk=endpoint.pk).update(
                last_sequence=endpoint.last_sequence + counts[endpoint.pk]
            )
    rows_copy(Message, _MESSAGE_COLUMNS, rows, json_columns=("data", "personal"))
    from .tasks import deliveries_kick_on_commit

    deliveries_kick_on_commit()
