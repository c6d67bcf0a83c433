"""``POST events/``: the events' rows and ledger entries, prepared and inserted set-based.

Each ledger payload is built by the function its service uses
(``contacts.services.*_ledger_payload``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models

from contacts.models import (
    CONSENT_COLUMNS,
    DISCLOSURE_COLUMNS,
    TOUCH_COLUMNS,
    Consent,
    Disclosure,
    Touch,
)
from contacts.sealing import contact_keys
from contacts.services import (
    consent_ledger_payload,
    disclosure_ledger_payload,
    touch_ledger_payload,
)
from leadrecord.bulk import copy_line, copy_lines, rows_insert
from leadrecord.ledger import (
    Actor,
    LedgerDraft,
    PreparedEntry,
    ledger_prepare,
)

from .parsing import ParsedEvent

# Each event type's ledger action (the services write the same ones).
RECORD_ACTIONS = {
    "touch": "touch.record",
    "consent": "consent.record",
    "disclosure": "disclosure.record",
}


@dataclass
class Plan:
    """One event made ready to insert: its row id, row values and ledger entry."""

    row_id: int
    copy_text: str  # the row as a line of COPY text (PostgreSQL only)
    entry: PreparedEntry


def event_row(event: ParsedEvent, contact_id: int, now: datetime, actor: Actor) -> tuple[Any, ...]:
    fields = event.fields
    if event.type == "touch":
        return (
            contact_id,
            fields["channel"].pk,
            fields["campaign"].pk if fields["campaign"] else None,
            fields["kind"],
            event.occurred_at,
            now,
            event.source_system,
            event.external_id,
            actor.user_id,
        )
    if event.type == "consent":
        return (
            contact_id,
            fields["purpose"],
            fields["granted"],
            fields["source"],
            fields["notice_version"],
            event.occurred_at,
            now,
            event.source_system,
            event.external_id,
        )
    return (
        contact_id,
        fields["key"],
        fields["value"],
        fields["audience"],
        fields["purpose"],
        fields["source"],
        event.occurred_at,
        now,
        fields["expires_at"],
        event.source_system,
        event.external_id,
    )


def event_draft(
    event: ParsedEvent, row_id: int, contact_id: int, actor: Actor, keys: dict[int, bytes]
) -> LedgerDraft:
    """The event's ledger entry, its payload built by the function its service uses."""
    fields = event.fields
    after: dict[str, Any]
    if event.type == "touch":
        after = touch_ledger_payload(
            channel_key=fields["channel"].key,
            campaign_id=fields["campaign"].pk if fields["campaign"] else None,
            kind=fields["kind"],
            source_system=event.source_system,
            external_id=event.external_id,
        )
    elif event.type == "consent":
        after = consent_ledger_payload(
            purpose=fields["purpose"],
            granted=fields["granted"],
            source=fields["source"],
            notice_version=fields["notice_version"],
            source_system=event.source_system,
            external_id=event.external_id,
        )
    else:
        after = disclosure_ledger_payload(
            contact_id=contact_id,
            key=fields["key"],
            value=fields["value"],
            audience=fields["audience"],
            purpose=fields["purpose"],
            source=fields["source"],
            expires_at=fields["expires_at"],
            person_key=keys[contact_id],
            source_system=event.source_system,
            external_id=event.external_id,
        )
    return LedgerDraft(
        actor=actor,
        action=RECORD_ACTIONS[event.type],
        subject_type=event.type,
        subject_id=row_id,
        contact_id=contact_id,
        after=after,
        occurred_at=event.occurred_at,
    )


def _ids_allocate(event_type: str, count: int) -> list[int] | None:
    """Take ``count`` ids from the table's sequence (PostgreSQL), or None elsewhere.

    Ids taken for events that turn out to be duplicates are simply skipped;
    sequences have gaps by design. Ids known before the insert let the rows go
    in by COPY with their ledger entries prepared outside the lock: what
    bench/ingest.py's bulk rate rests on. Elsewhere (the embedded SQLite
    default) rows are inserted first and prepared with the ids they got.
    """
    if connection.vendor != "postgresql":
        return None
    if count == 0:
        return []
    model, _ = TABLE_OF[event_type]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def plans_make(
    events: list[ParsedEvent], contact_ids: dict[int, int], actor: Actor, now: datetime
) -> dict[int, Plan] | None:
    """Plans for ``events`` (whose people are known) by event index; None without sequences."""
    by_type: dict[str, list[ParsedEvent]] = {"touch": [], "consent": [], "disclosure": []}
    for event in events:
        by_type[event.type].append(event)
    allocated = {kind: _ids_allocate(kind, len(batch)) for kind, batch in by_type.items()}
    if any(ids is None for ids in allocated.values()):
        return None
    keys = contact_keys({contact_ids[event.index] for event in by_type["disclosure"]})
    plans: dict[int, Plan] = {}
    for kind, batch in by_type.items():
        ids = allocated[kind] or []
        drafts = [
            event_draft(event, row_id, contact_ids[event.index], actor, keys)
            for event, row_id in zip(batch, ids, strict=True)
        ]
        for event, row_id, entry in zip(batch, ids, ledger_prepare(drafts), strict=True):
            row = (row_id, *event_row(event, contact_ids[event.index], now, actor))
            plans[event.index] = Plan(row_id, copy_line(row) + "\n", entry)
    return plans


def plans_copy(events: list[ParsedEvent], plans: dict[int, Plan]) -> set[int]:
    """COPY the planned rows of these events, table by table; returns their indexes."""
    stored: set[int] = set()
    for kind, (model, columns) in TABLE_OF.items():
        chosen = [event.index for event in events if event.type == kind and event.index in plans]
        if chosen:
            copy_lines(model, ("id", *columns), [plans[index].copy_text for index in chosen])
        stored.update(chosen)
    return stored


def insert_returning_ids(
    events: list[ParsedEvent], contact_ids: dict[int, int], actor: Actor, now: datetime
) -> dict[int, Plan]:
    """Without sequences to draw ids from (SQLite): insert, then prepare with the ids."""
    keys = contact_keys(
        {contact_ids[event.index] for event in events if event.type == "disclosure"}
    )
    plans: dict[int, Plan] = {}
    for kind, (model, columns) in TABLE_OF.items():
        batch = [event for event in events if event.type == kind]
        ids = rows_insert(
            model,
            columns,
            [event_row(event, contact_ids[event.index], now, actor) for event in batch],
            returning_id=True,
        )
        drafts = [
            event_draft(event, row_id, contact_ids[event.index], actor, keys)
            for event, row_id in zip(batch, ids, strict=True)
        ]
        for event, row_id, entry in zip(batch, ids, ledger_prepare(drafts), strict=True):
            plans[event.index] = Plan(row_id, "", entry)
    return plans


TABLE_OF: dict[str, tuple[type[models.Model], tuple[str, ...]]] = {
    "touch": (Touch, TOUCH_COLUMNS),
    "consent": (Consent, CONSENT_COLUMNS),
    "disclosure": (Disclosure, DISCLOSURE_COLUMNS),
}
