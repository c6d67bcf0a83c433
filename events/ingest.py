"""``POST events/``: up to 1,000 events per request, stored set-based and exactly once.

The batch is checked event by event in plain Python (a serializer per event
would cost more than the database work), then written in one transaction
with a handful of set-based statements: find duplicates, find or create the
people and their organizations, insert touches, consents and disclosures,
append the ledger entries. The ledger lock serializes writers, so the first
attempt is optimistic (see ``_ingest``): what needs no lock happens before
it, and a conflict with another writer rolls the attempt back and runs the
batch again lock-first. Several clients retrying the same batch at once still
store each event once, and a worker killed mid-batch leaves nothing behind
(the transaction rolls back).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils import timezone

from contacts.erasure import ERASED_DETAIL, erasures_of
from contacts.models import (
    JOURNEY_STAGE_KEY,
    Consent,
    Disclosure,
    IdempotencyRecord,
    Touch,
)
from contacts.selectors import contacts_living
from handoff.models import Deal
from handoff.scoring import contacts_rescore, contacts_score_touches
from handoff.services import handoffs_open_on_say_so, sale_event_record
from leadrecord.errors import DomainError
from leadrecord.ledger import (
    Actor,
    LedgerDraft,
    PreparedEntry,
    ledger_actions_since,
    ledger_append_prepared,
    ledger_head_seq,
    ledger_lock,
    ledger_prepare,
)

from .parsing import ParsedEvent, Rejected, event_parse, external_id_of, lookups_for
from .people import emails_waiting, people_create, people_find
from .rows import RECORD_ACTIONS, TABLE_OF, Plan, insert_returning_ids, plans_copy, plans_make

MAX_EVENTS = 1000  # docs/api.md's limit per request; keeps one transaction short
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# How long a caller's Idempotency-Key is remembered (docs/api.md): long enough for any
# retry, short enough that the table stays small. The hourly task clears older ones.
IDEMPOTENCY_RETENTION = timedelta(hours=24)


class BatchRefused(Exception):
    """The body as a whole is not a batch (docs/api.md: a 400 that writes nothing)."""

    def __init__(self, detail: str, attr: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr


class IdempotencyKeyReused(Exception):
    """The same Idempotency-Key came with a different body (422)."""


@dataclass
class EventResult:
    external_id: str | None
    status: str = "created"
    id: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "status": self.status,
            "id": self.id,
            "errors": self.errors,
        }


@dataclass
class IngestAnswer:
    body: dict[str, Any]
    replayed: bool = False


# --- the batch -------------------------------------------------------------------


def batch_check(body: Any) -> list[Any]:
    """The list of events, or BatchRefused when the body is not a batch of 1 to 1,000."""
    if not isinstance(body, dict):
        raise BatchRefused('Send an object: {"events": [...]}.')
    events = body.get("events")
    if not isinstance(events, list):
        raise BatchRefused("Give a list of events.", attr="events")
    if not 1 <= len(events) <= MAX_EVENTS:
        raise BatchRefused(f"Send 1 to {MAX_EVENTS} events, not {len(events)}.", attr="events")
    return events


def request_fingerprint(body: Any) -> str:
    """A hash of the body's content (key order and spacing do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def events_ingest(
    *,
    events: list[Any],
    actor: Actor,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> IngestAnswer:
    """Store a batch of events; answer per event, in request order.

    With an ``idempotency_key`` the answer is kept for the caller: the same
    key and body answer it again (``replayed``), another body raises
    IdempotencyKeyReused. Effects: touches, consents, disclosures, new
    contacts and organizations, one ledger entry for each.
    """
    now = timezone.now()
    lookups = lookups_for(events)
    results: list[EventResult] = []
    parsed: list[ParsedEvent] = []
    for index, data in enumerate(events):
        result = EventResult(external_id=external_id_of(data))
        results.append(result)
        try:
            parsed.append(event_parse(index, data, lookups, now))
        except Rejected as rejection:
            result.status = "rejected"
            result.errors = [rejection.error]

    sales = [event for event in parsed if event.type == "sale"]
    parsed = [event for event in parsed if event.type != "sale"]
    batch = _Batch(parsed, sales, results, actor, now, idempotency_key, fingerprint)
    try:
        return _ingest(batch, optimistic=True)
    except (_Conflict, IntegrityError):
        pass
    except OperationalError as error:
        if not _deadlock(error):
            raise
    # Someone stored the same events, people or answer meanwhile: the whole
    # attempt rolled back; again with the lock first, as every writer once did.
    # Under the lock it can still wait for rows that another client's
    # optimistic attempt inserted, while that one waits for the lock: if
    # PostgreSQL fails this side of that deadlock, the attempt runs again.
    for _ in range(_LOCK_FIRST_ATTEMPTS - 1):
        try:
            return _ingest(batch, optimistic=False)
        except OperationalError as error:
            if not _deadlock(error):
                raise
    return _ingest(batch, optimistic=False)


_LOCK_FIRST_ATTEMPTS = 3


def _deadlock(error: OperationalError) -> bool:
    return getattr(error.__cause__, "pgcode", None) == "40P01"  # deadlock_detected


class _Conflict(Exception):
    """The record changed between the optimistic reads and the lock."""


@dataclass
class _Batch:
    parsed: list[ParsedEvent]  # touches, consents and disclosures
    sales: list[ParsedEvent]
    results: list[EventResult]  # with the rejections found while parsing
    actor: Actor
    now: datetime
    idempotency_key: str | None
    fingerprint: str


def _ingest(batch: _Batch, *, optimistic: bool) -> IngestAnswer:
    """One attempt at the batch, in one transaction.

    Optimistic: everything that needs no lock happens before it: finding the
    people and duplicates, and inserting the events of people already on
    record. Under the lock there remain the new people with their events, the
    ledger entries, sales and scores. A writer that took the lock meanwhile
    and stored the same events or answer makes the insert fail or the checks
    under the lock see it (``_Conflict``); the caller then runs the batch
    again, not optimistic: the lock first and everything under it.
    """
    actor, now = batch.actor, batch.now
    results = [replace(result, errors=list(result.errors)) for result in batch.results]
    with transaction.atomic():
        # Before the lock: find the people already on record and prepare their
        # events' rows and ledger entries (and, optimistic, insert those rows),
        # so that the part every writer waits for is as short as it can be.
        read_at_seq = ledger_head_seq()
        plans = _plan_known_people(batch.parsed, actor, now)
        if optimistic:
            answer = _answer_kept(batch)
            if answer is not None:
                return answer
            fresh, repeats = _mark_duplicates(batch.parsed, results)
            plans.stored = plans_copy(fresh, plans.by_index)
        ledger_lock()
        # What changed since the reads before the lock is on the ledger after
        # the head read then: people merged or erased meanwhile must be looked
        # up again, and an event of another type stored meanwhile may carry one
        # of this batch's (system, external id) pairs, unseen by the per-table
        # unique constraints. Optimistic, either runs the batch again lock-first.
        watched = (*_LIVING_CHANGES, *_records_unguarded(fresh)) if optimistic else _LIVING_CHANGES
        plans.recheck_living = ledger_actions_since(read_at_seq, watched)
        if optimistic and plans.recheck_living:
            raise _Conflict()
        answer = _answer_kept(batch)
        if answer is not None:
            if optimistic:
                raise _Conflict()
            return answer
        if not optimistic:
            fresh, repeats = _mark_duplicates(batch.parsed, results)
        people = _store(fresh, plans, results, actor, now)
        fresh = [event for event in fresh if event.index in people]  # less those refused
        for index, first_index in repeats:
            results[index].id = results[first_index].id
            if results[first_index].status == "rejected":
                results[index].status = "rejected"
                results[index].errors = list(results[first_index].errors)
        _sales_store(batch.sales, results, actor)
        _scores_update(fresh, people, actor)
        handoffs_open_on_say_so(
            results[event.index].id
            for event in fresh
            if event.type == "disclosure" and event.fields["key"] == JOURNEY_STAGE_KEY
        )
        body = _answer(results)
        if batch.idempotency_key is not None and actor.user_id is not None:
            IdempotencyRecord.objects.create(
                user_id=actor.user_id,
                key=batch.idempotency_key,
                request_hash=batch.fingerprint,
                status_code=200,
                response=body,
                created_at=now,
            )
    return IngestAnswer(body=body)


def _answer_kept(batch: _Batch) -> IngestAnswer | None:
    """The answer kept for this Idempotency-Key, if any (IdempotencyKeyReused for
    another body)."""
    if batch.idempotency_key is None or batch.actor.user_id is None:
        return None
    previous = IdempotencyRecord.objects.filter(
        user_id=batch.actor.user_id, key=batch.idempotency_key
    ).first()
    if previous is not None and previous.created_at <= batch.now - IDEMPOTENCY_RETENTION:
        previous.delete()  # forgotten: the key starts afresh
        previous = None
    if previous is None:
        return None
    if previous.request_hash != batch.fingerprint:
        raise IdempotencyKeyReused()
    return IngestAnswer(body=previous.response, replayed=True)


def idempotency_records_expire(*, now: datetime | None = None) -> int:
    """Forget Idempotency-Keys older than the retention; returns how many."""
    cutoff = (now or timezone.now()) - IDEMPOTENCY_RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=cutoff).delete()
    return deleted


def _answer(results: list[EventResult]) -> dict[str, Any]:
    totals = {"created": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        totals[result.status] += 1
    return {**totals, "results": [result.as_dict() for result in results]}


# Every table whose rows carry a (source system, external id) pair of an event.
_EVENT_PAIR_COLUMNS: tuple[tuple[type[models.Model], str, str], ...] = (
    (Touch, "source_system", "external_id"),
    (Consent, "event_source_system", "event_external_id"),
    (Disclosure, "event_source_system", "event_external_id"),
)


def _pairs_known(pairs: set[tuple[str, str]]) -> list[tuple[str, str, int]]:
    """Stored events among these (system, external id) pairs, via each table's unique index."""
    # PostgreSQL's own statement keeps bench/ingest.py's bulk rate; elsewhere (the
    # embedded SQLite default) the ORM's.
    if connection.vendor != "postgresql":
        systems = {system for system, _ in pairs}
        external_ids = {external_id for _, external_id in pairs}
        found: list[tuple[str, str, int]] = []
        for model, system_field, id_field in _EVENT_PAIR_COLUMNS:
            rows = model._default_manager.filter(
                **{f"{system_field}__in": systems, f"{id_field}__in": external_ids}
            ).values_list(system_field, id_field, "id")
            found.extend(row for row in rows if (row[0], row[1]) in pairs)
        return found
    # The pairs as two arrays joined to each table: one index probe per pair,
    # whatever the planner's statistics say about a long IN list. A LATERAL
    # subquery with OFFSET 0 (so it is not flattened into a join) keeps each a
    # loop of index probes, where the hash join the planner picks otherwise
    # scans the table. One statement for all tables.
    probes = " UNION ALL ".join(
        f"SELECT p.system, p.external_id, t.id FROM p CROSS JOIN LATERAL "  # noqa: S608
        f"(SELECT id FROM {connection.ops.quote_name(model._meta.db_table)} "
        f"WHERE {system_field} = p.system AND {id_field} = p.external_id OFFSET 0) AS t"
        for model, system_field, id_field in _EVENT_PAIR_COLUMNS
    )
    ordered = list(pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH p AS MATERIALIZED (SELECT * FROM unnest(%s::varchar[], %s::varchar[]) "  # noqa: S608 -- model names
            f"AS p(system, external_id)) {probes}",
            [[pair[0] for pair in ordered], [pair[1] for pair in ordered]],
        )
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def _mark_duplicates(
    parsed: list[ParsedEvent], results: list[EventResult]
) -> tuple[list[ParsedEvent], list[tuple[int, int]]]:
    """Events seen before (stored, or earlier in this batch) become ``duplicate``.

    Returns the fresh events and, for repeats within the batch, (index, index
    of the first).
    """
    pairs = {(event.source_system, event.external_id) for event in parsed}
    known: dict[tuple[str, str], int] = {}
    if pairs:
        for system, external_id, pk in _pairs_known(pairs):
            known[(system, external_id)] = pk
    fresh: list[ParsedEvent] = []
    repeats: list[tuple[int, int]] = []
    first_in_batch: dict[tuple[str, str], ParsedEvent] = {}
    for event in parsed:
        pair = (event.source_system, event.external_id)
        result = results[event.index]
        if pair in known:
            result.status, result.id = "duplicate", known[pair]
        elif pair in first_in_batch:
            result.status = "duplicate"
            repeats.append((event.index, first_in_batch[pair].index))
        else:
            first_in_batch[pair] = event
            fresh.append(event)
    return fresh, repeats


# The changes that end a contact's life on record (contacts.services).
_LIVING_CHANGES = ("contact.merge", "contact.erase")


def _records_unguarded(events: list[ParsedEvent]) -> tuple[str, ...]:
    """The ledger actions (as event_draft names them) of the events another writer could
    store with one of these events' pairs unseen by the unique constraints: of every
    type but theirs when they are all of one type (that table's constraint catches
    the rest)."""
    types = {event.type for event in events}
    return tuple(RECORD_ACTIONS[kind] for kind in TABLE_OF if types and types != {kind})


@dataclass
class _Plans:
    contact_ids: dict[int, int]  # event index -> contact id, for people already on record
    by_index: dict[int, Plan]
    recheck_living: bool = True  # whether anyone may have been merged or erased since
    stored: set[int] = field(default_factory=set)  # events inserted before the lock
    # Erasures of the emails not on record (contacts.erasure), read before the lock.
    erased: dict[str, datetime] = field(default_factory=dict)


def _plan_known_people(parsed: list[ParsedEvent], actor: Actor, now: datetime) -> _Plans:
    contact_ids = people_find(parsed)
    known = [event for event in parsed if event.index in contact_ids]
    plans = plans_make(known, contact_ids, actor, now) if known else {}
    return _Plans(contact_ids, plans or {}, erased=erasures_of(emails_waiting(parsed, contact_ids)))


def _store(
    events: list[ParsedEvent],
    plans: _Plans,
    results: list[EventResult],
    actor: Actor,
    now: datetime,
) -> dict[int, int]:
    """Insert the fresh events (under the ledger lock) and append their ledger entries.

    Returns each event's person: event index -> contact id.
    """
    contact_ids = dict(plans.contact_ids)
    still_living = set(contact_ids.values())
    if plans.recheck_living and still_living:
        still_living = set(
            contacts_living().filter(id__in=still_living).values_list("id", flat=True)
        )
    planned = {
        event.index: plans.by_index[event.index]
        for event in events
        if event.index in plans.by_index and contact_ids[event.index] in still_living
    }
    # People merged or erased since they were looked up are looked up again.
    for index, contact_id in list(contact_ids.items()):
        if contact_id not in still_living:
            del contact_ids[index]
    events = _erased_refuse(events, contact_ids, plans, results)
    people_entries: list[LedgerDraft] = []
    contact_ids.update(people_create(events, contact_ids, actor, now, people_entries))
    late = [event for event in events if event.index not in planned]
    late_plans = plans_make(late, contact_ids, actor, now) if late else {}
    if late_plans is None:
        late_plans = insert_returning_ids(late, contact_ids, actor, now)
    else:
        planned.update(late_plans)
        late_plans = {}
    plans_copy(
        [event for event in events if event.index not in plans.stored],
        planned,
    )
    entries: list[tuple[int, PreparedEntry]] = []
    for index, plan in planned.items():
        results[index].id = plan.row_id
        entries.append((index, plan.entry))
    for index, plan in late_plans.items():
        results[index].id = plan.row_id
        entries.append((index, plan.entry))
    # People first, then the events' entries in request order.
    entries.sort(key=lambda pair: pair[0])
    ledger_append_prepared([*ledger_prepare(people_entries), *(entry for _, entry in entries)])
    return {event.index: contact_ids[event.index] for event in events}


def _erased_refuse(
    events: list[ParsedEvent],
    contact_ids: dict[int, int],
    plans: _Plans,
    results: list[EventResult],
) -> list[ParsedEvent]:
    """Refuse the events about people not on record who were erased after the event
    (``contact_erased``): old data never brings an erased person back. Returns the
    events kept.

    The erasures were read before the lock, in one query for the emails not on
    record; an erasure since then is on the ledger after that read
    (``recheck_living``), and only then are they read again, under the lock.
    """
    erased = plans.erased
    if plans.recheck_living:
        waiting = emails_waiting(events, contact_ids)
        erased = erasures_of(waiting) if waiting else {}
    if not erased:
        return events
    kept: list[ParsedEvent] = []
    for event in events:
        erased_at = erased.get(event.person.email_key) if event.person is not None else None
        if event.index in contact_ids or erased_at is None or event.occurred_at >= erased_at:
            kept.append(event)
            continue
        results[event.index].status = "rejected"
        results[event.index].errors = [
            {"code": "contact_erased", "detail": ERASED_DETAIL, "attr": "contact.email"}
        ]
    return kept


def _scores_update(events: list[ParsedEvent], people: dict[int, int], actor: Actor) -> None:
    """Scores follow the batch: new touches add their points; people whose disclosures or
    sales-contact consent changed are recounted in full."""
    recount = {
        people[event.index]
        for event in events
        if event.type == "disclosure"
        or (event.type == "consent" and event.fields["purpose"] == "sales_contact")
    }
    contacts_score_touches(
        [
            (people[event.index], event.fields["channel"].key, event.fields["kind"])
            for event in events
            if event.type == "touch" and people[event.index] not in recount
        ],
        actor=actor,
    )
    if recount:
        contacts_rescore(recount, actor=actor)


def _sales_store(sales: list[ParsedEvent], results: list[EventResult], actor: Actor) -> None:
    """Sale events, one by one through the deal's rules (they are few, and each one's
    effect depends on the deal's state); each in a savepoint, so a refused one
    leaves the rest of the batch alone."""
    if not sales:
        return
    deals = {
        deal.external_id: deal
        for deal in Deal.objects.filter(
            external_id__in={event.fields["deal_external_id"] for event in sales}
        )
    }
    for event in sales:
        result = results[event.index]
        deal = deals.get(event.fields["deal_external_id"])
        if deal is None:
            result.status = "rejected"
            result.errors = [
                {
                    "code": "does_not_exist",
                    "detail": f"No deal with external id {event.fields['deal_external_id']!r}.",
                    "attr": "deal_external_id",
                }
            ]
            continue
        try:
            with transaction.atomic():
                sale, created = sale_event_record(
                    deal=deal,
                    kind=event.fields["kind"],
                    amount=event.fields["amount"],
                    occurred_at=event.occurred_at,
                    source_system=event.source_system,
                    external_id=event.external_id,
                    actor=actor,
                )
        except DomainError as refusal:
            result.status = "rejected"
            result.errors = [
                {"code": refusal.code, "detail": refusal.detail, "attr": refusal.attr or "kind"}
            ]
            continue
        result.id = sale.pk
        result.status = "created" if created else "duplicate"
