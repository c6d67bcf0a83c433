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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from contacts import rules
from contacts.erasure import ERASED_DETAIL, erasures_of
from contacts.models import (
    CONSENT_SOURCE_MAX_LENGTH,
    DISCLOSURE_KEY_MAX_LENGTH,
    DISCLOSURE_VALUE_MAX_LENGTH,
    DOMAIN_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    JOURNEY_STAGE_KEY,
    NAME_MAX_LENGTH,
    NOTICE_VERSION_MAX_LENGTH,
    ORGANIZATION_NAME_MAX_LENGTH,
    SOURCE_SYSTEM_MAX_LENGTH,
    TOUCH_COLUMNS,
    Audience,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
    IdempotencyRecord,
    JourneyStage,
    Organization,
    Touch,
    TouchKind,
)
from contacts.sealing import contact_keys, contact_keys_create
from contacts.selectors import contacts_living
from contacts.services import (
    consent_ledger_payload,
    contact_ledger_payload,
    disclosure_ledger_payload,
    domain_normalize,
    organization_ledger_payload,
    touch_ledger_payload,
)
from handoff.models import Deal, SaleKind
from handoff.scoring import contacts_rescore, contacts_score_touches
from handoff.services import handoffs_open_on_say_so, sale_event_record
from leadrecord.api_fields import FUTURE_TOLERANCE, MAX_ID
from leadrecord.bulk import copy_line, copy_lines, rows_insert
from leadrecord.dates import MOMENT_OUT_OF_RANGE, OUT_OF_RANGE_CODE, moment_in_range
from leadrecord.errors import RuleViolation
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

MAX_EVENTS = 1000  # API.md's limit per request; keeps one transaction short
EVENT_TYPES = ("touch", "consent", "disclosure", "sale")
IDEMPOTENCY_KEY_MAX_LENGTH = 255
# How long a caller's Idempotency-Key is remembered (API.md): long enough for any
# retry, short enough that the table stays small. The hourly task clears older ones.
IDEMPOTENCY_RETENTION = timedelta(hours=24)

# Each event type's ledger action (the services write the same ones).
_RECORD_ACTIONS = {
    "touch": "touch.record",
    "consent": "consent.record",
    "disclosure": "disclosure.record",
}


# Enum members' plain values, computed once: reading ``Choices.values`` builds
# a new list on every access, and this runs for every event.
_TOUCH_KINDS = tuple(str(value) for value in TouchKind.values)
_TOUCH_KIND_OTHER = str(TouchKind.OTHER.value)
_CONSENT_PURPOSES = tuple(str(value) for value in ConsentPurpose.values)
_JOURNEY_STAGES = tuple(str(value) for value in JourneyStage.values)
_AUDIENCES = tuple(str(value) for value in Audience.values)
_DISCLOSURE_PURPOSES = tuple(str(value) for value in DisclosurePurpose.values)
_DISCLOSURE_SOURCES = tuple(str(value) for value in DisclosureSource.values)


class BatchRefused(Exception):
    """The body as a whole is not a batch (API.md: a 400 that writes nothing)."""

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
class PersonSpec:
    email: str
    email_key: str
    first_name: str = ""
    last_name: str = ""
    organization_name: str = ""
    organization_domain: str = ""


@dataclass
class ParsedEvent:
    index: int
    type: str
    source_system: str
    external_id: str
    occurred_at: datetime
    person: PersonSpec | None
    fields: dict[str, Any]
    contact_id: int | None = None


@dataclass
class IngestAnswer:
    body: dict[str, Any]
    replayed: bool = False


class _Rejected(Exception):
    def __init__(self, attr: str, detail: str, code: str = "invalid") -> None:
        super().__init__(detail)
        self.error: dict[str, Any] = {"code": code, "detail": detail, "attr": attr}


# --- checking one event ---------------------------------------------------------


def _text(
    data: Mapping[str, Any], name: str, *, max_length: int, required: bool, attr: str = ""
) -> str:
    attr = attr or name
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _Rejected(attr, "This field is required.", "required")
        return ""
    if not isinstance(value, str):
        raise _Rejected(attr, "Give a string.")
    value = value.strip()
    if required and not value:
        raise _Rejected(attr, "This field may not be blank.", "blank")
    if len(value) > max_length:
        raise _Rejected(attr, f"Give at most {max_length} characters.", "max_length")
    if "\x00" in value:
        raise _Rejected(attr, "Null characters are not allowed.", "null_characters_not_allowed")
    return value


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...], *, required: bool) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _Rejected(name, "This field is required.", "required")
        return ""
    if not isinstance(value, str) or value not in choices:
        raise _Rejected(name, f"Choose one of {', '.join(choices)}.", "invalid_choice")
    return value


def _moment(value: Any, attr: str, *, required: bool = True) -> datetime | None:
    if value is None or value == "":
        if required:
            raise _Rejected(attr, "This field is required.", "required")
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise _Rejected(attr, "Give an ISO-8601 time with a UTC offset.")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise _Rejected(attr, "Give an ISO-8601 time with a UTC offset.") from error
    if moment.tzinfo is None:
        raise _Rejected(attr, "Give the time with a UTC offset.", "naive")
    if not moment_in_range(moment):
        raise _Rejected(attr, MOMENT_OUT_OF_RANGE, OUT_OF_RANGE_CODE)
    return moment


def _checked(check: Callable[..., None], **values: Any) -> None:
    """Apply a domain rule (``contacts.rules``, as the services do) to one event."""
    try:
        check(**values)
    except RuleViolation as refusal:
        raise _Rejected(refusal.attr or "non_field_errors", refusal.detail, refusal.code) from None


def _person(data: Any) -> PersonSpec:
    if not isinstance(data, dict):
        raise _Rejected("contact", "Give the person as an object with an email.", "required")
    email = _text(data, "email", max_length=EMAIL_MAX_LENGTH, required=True, attr="contact.email")
    if not rules.email_valid(email):
        raise _Rejected("contact.email", rules.EMAIL_INVALID)
    first = _text(
        data, "first_name", max_length=NAME_MAX_LENGTH, required=False, attr="contact.first_name"
    )
    last = _text(
        data, "last_name", max_length=NAME_MAX_LENGTH, required=False, attr="contact.last_name"
    )
    organization = data.get("organization")
    name = domain = ""
    if isinstance(organization, str):
        name = _text(
            data,
            "organization",
            max_length=ORGANIZATION_NAME_MAX_LENGTH,
            required=False,
            attr="contact.organization",
        )
    elif isinstance(organization, dict):
        name = _text(
            organization,
            "name",
            max_length=ORGANIZATION_NAME_MAX_LENGTH,
            required=False,
            attr="contact.organization.name",
        )
        domain = _text(
            organization,
            "domain",
            max_length=DOMAIN_MAX_LENGTH,
            required=False,
            attr="contact.organization.domain",
        )
        if domain and not rules.domain_valid(domain):
            raise _Rejected("contact.organization.domain", rules.DOMAIN_INVALID)
    elif organization is not None:
        raise _Rejected("contact.organization", "Give a name or an object {name, domain}.")
    return PersonSpec(email, email.lower(), first, last, name, domain_normalize(domain))


@dataclass
class _Lookups:
    channels: dict[str, Channel]
    campaigns: dict[int, Campaign]


def _touch_fields(data: Mapping[str, Any], lookups: _Lookups) -> dict[str, Any]:
    key = data.get("channel")
    channel = lookups.channels.get(key) if isinstance(key, str) else None
    if channel is None:
        if key is None or key == "":
            raise _Rejected("channel", "This field is required.", "required")
        raise _Rejected("channel", f"Unknown channel {str(key)[:40]!r}.", "does_not_exist")
    kind = _choice(data, "kind", _TOUCH_KINDS, required=False) or _TOUCH_KIND_OTHER
    campaign = None
    campaign_id = data.get("campaign")
    if campaign_id is not None:
        if (
            isinstance(campaign_id, bool)
            or not isinstance(campaign_id, int)
            or not (0 < campaign_id <= MAX_ID)
        ):
            raise _Rejected("campaign", "Give a campaign id.")
        campaign = lookups.campaigns.get(campaign_id)
        if campaign is None:
            raise _Rejected("campaign", f"No campaign {campaign_id}.", "does_not_exist")
    _checked(rules.touch_check, channel=channel, campaign=campaign, kind=kind)
    return {"channel": channel, "campaign": campaign, "kind": kind}


def _consent_fields(data: Mapping[str, Any], lookups: _Lookups) -> dict[str, Any]:
    purpose = _choice(data, "purpose", _CONSENT_PURPOSES, required=True)
    _checked(rules.consent_check, purpose=purpose)
    granted = data.get("granted")
    if not isinstance(granted, bool):
        raise _Rejected(
            "granted", "Give true or false.", "required" if granted is None else "invalid"
        )
    return {
        "purpose": purpose,
        "granted": granted,
        "source": _text(data, "source", max_length=CONSENT_SOURCE_MAX_LENGTH, required=True),
        "notice_version": _text(
            data, "notice_version", max_length=NOTICE_VERSION_MAX_LENGTH, required=False
        ),
    }


def _disclosure_fields(data: Mapping[str, Any], lookups: _Lookups) -> dict[str, Any]:
    key = _text(data, "key", max_length=DISCLOSURE_KEY_MAX_LENGTH, required=True)
    value = _text(data, "value", max_length=DISCLOSURE_VALUE_MAX_LENGTH, required=True)
    return {
        "key": key,
        "value": value,
        "audience": _choice(data, "audience", _AUDIENCES, required=True),
        "purpose": _choice(data, "purpose", _DISCLOSURE_PURPOSES, required=True),
        "source": _choice(data, "source", _DISCLOSURE_SOURCES, required=True),
        "expires_at_raw": data.get("expires_at"),
    }


_SALE_KINDS = tuple(str(value) for value in SaleKind.values)
_MONEY = re.compile(r"^\d{1,12}(?:\.\d{1,2})?$")


def _sale_fields(data: Mapping[str, Any], lookups: _Lookups) -> dict[str, Any]:
    """A sale event names its deal by ``deal_external_id``; amounts are decimal strings."""
    deal_external_id = _text(
        data, "deal_external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=True
    )
    kind = _choice(data, "kind", _SALE_KINDS, required=True)
    raw_amount = data.get("amount")
    amount: Decimal | None = None
    if raw_amount is None or raw_amount == "":
        if kind != SaleKind.LOST:
            raise _Rejected("amount", f"A {kind} needs an amount.", "required")
    else:
        if isinstance(raw_amount, bool) or not isinstance(raw_amount, str | int | float):
            raise _Rejected("amount", 'Give the amount as a decimal string, e.g. "1234.50".')
        text = str(raw_amount).strip()
        if not _MONEY.match(text):
            raise _Rejected(
                "amount",
                "Give a non-negative amount with at most 12 digits before the point and 2 after.",
            )
        amount = Decimal(text)
    currency = data.get("currency")
    if currency is not None and currency != settings.LEADRECORD_CURRENCY:
        raise _Rejected(
            "currency",
            f"Amounts are in {settings.LEADRECORD_CURRENCY}; other currencies are not accepted "
            "until exchange rates exist.",
            "unsupported_currency",
        )
    return {"deal_external_id": deal_external_id, "kind": kind, "amount": amount}


_FIELDS_BY_TYPE: dict[str, Callable[[Mapping[str, Any], _Lookups], dict[str, Any]]] = {
    "touch": _touch_fields,
    "consent": _consent_fields,
    "disclosure": _disclosure_fields,
    "sale": _sale_fields,
}


def _parse(index: int, data: Any, lookups: _Lookups, now: datetime) -> ParsedEvent:
    if not isinstance(data, dict):
        raise _Rejected("non_field_errors", "Each event is an object.")
    event_type = data.get("type")
    if event_type not in _FIELDS_BY_TYPE:
        raise _Rejected("type", f"Choose one of {', '.join(EVENT_TYPES)}.", "invalid_choice")
    source_system = _text(data, "source_system", max_length=SOURCE_SYSTEM_MAX_LENGTH, required=True)
    external_id = _text(data, "external_id", max_length=EXTERNAL_ID_MAX_LENGTH, required=True)
    occurred_at = _moment(data.get("occurred_at"), "occurred_at")
    if occurred_at is None:
        raise _Rejected("occurred_at", "This field is required.", "required")
    if occurred_at > now + FUTURE_TOLERANCE:
        raise _Rejected("occurred_at", "This time is in the future.", "future")
    person = None if event_type == "sale" else _person(data.get("contact"))
    fields = _FIELDS_BY_TYPE[event_type](data, lookups)
    if "expires_at_raw" in fields:
        expires_at = _moment(fields.pop("expires_at_raw"), "expires_at", required=False)
        fields["expires_at"] = expires_at
        _checked(
            rules.disclosure_check,
            key=fields["key"],
            value=fields["value"],
            audience=fields["audience"],
            purpose=fields["purpose"],
            source=fields["source"],
            expires_at=expires_at,
            disclosed_at=occurred_at,
        )
    return ParsedEvent(index, event_type, source_system, external_id, occurred_at, person, fields)


def _external_id_of(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("external_id"), str):
        return data["external_id"][:EXTERNAL_ID_MAX_LENGTH]
    return None


def _lookups(events: list[Any]) -> _Lookups:
    campaign_ids: set[int] = {
        event["campaign"]
        for event in events
        if isinstance(event, dict)
        and isinstance(event.get("campaign"), int)
        and not isinstance(event.get("campaign"), bool)
        and 0 < event["campaign"] <= MAX_ID
    }
    return _Lookups(
        channels={channel.key: channel for channel in Channel.objects.filter(active=True)},
        campaigns=(
            {campaign.pk: campaign for campaign in Campaign.objects.filter(pk__in=campaign_ids)}
            if campaign_ids
            else {}
        ),
    )


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
    lookups = _lookups(events)
    results: list[EventResult] = []
    parsed: list[ParsedEvent] = []
    for index, data in enumerate(events):
        result = EventResult(external_id=_external_id_of(data))
        results.append(result)
        try:
            parsed.append(_parse(index, data, lookups, now))
        except _Rejected as rejection:
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
            plans.stored = _plans_copy(fresh, plans.by_index)
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


@dataclass
class _Plan:
    """One event made ready to insert: its row id, row values and ledger entry."""

    row_id: int
    copy_text: str  # the row as a line of COPY text (PostgreSQL only)
    entry: PreparedEntry


def _row(event: ParsedEvent, contact_id: int, now: datetime, actor: Actor) -> tuple[Any, ...]:
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


def _draft(
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
        action=_RECORD_ACTIONS[event.type],
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
    model, _ = _TABLE_OF[event_type]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _plans_make(
    events: list[ParsedEvent], contact_ids: dict[int, int], actor: Actor, now: datetime
) -> dict[int, _Plan] | None:
    """Plans for ``events`` (whose people are known) by event index; None without sequences."""
    by_type: dict[str, list[ParsedEvent]] = {"touch": [], "consent": [], "disclosure": []}
    for event in events:
        by_type[event.type].append(event)
    allocated = {kind: _ids_allocate(kind, len(batch)) for kind, batch in by_type.items()}
    if any(ids is None for ids in allocated.values()):
        return None
    keys = contact_keys({contact_ids[event.index] for event in by_type["disclosure"]})
    plans: dict[int, _Plan] = {}
    for kind, batch in by_type.items():
        ids = allocated[kind] or []
        drafts = [
            _draft(event, row_id, contact_ids[event.index], actor, keys)
            for event, row_id in zip(batch, ids, strict=True)
        ]
        for event, row_id, entry in zip(batch, ids, ledger_prepare(drafts), strict=True):
            row = (row_id, *_row(event, contact_ids[event.index], now, actor))
            plans[event.index] = _Plan(row_id, copy_line(row) + "\n", entry)
    return plans


# The changes that end a contact's life on record (contacts.services).
_LIVING_CHANGES = ("contact.merge", "contact.erase")


def _records_unguarded(events: list[ParsedEvent]) -> tuple[str, ...]:
    """The ledger actions (as _draft names them) of the events another writer could
    store with one of these events' pairs unseen by the unique constraints: of every
    type but theirs when they are all of one type (that table's constraint catches
    the rest)."""
    types = {event.type for event in events}
    return tuple(_RECORD_ACTIONS[kind] for kind in _TABLE_OF if types and types != {kind})


@dataclass
class _Plans:
    contact_ids: dict[int, int]  # event index -> contact id, for people already on record
    by_index: dict[int, _Plan]
    recheck_living: bool = True  # whether anyone may have been merged or erased since
    stored: set[int] = field(default_factory=set)  # events inserted before the lock
    # Erasures of the emails not on record (contacts.erasure), read before the lock.
    erased: dict[str, datetime] = field(default_factory=dict)


def _plan_known_people(parsed: list[ParsedEvent], actor: Actor, now: datetime) -> _Plans:
    contact_ids = _people_find(parsed)
    known = [event for event in parsed if event.index in contact_ids]
    plans = _plans_make(known, contact_ids, actor, now) if known else {}
    return _Plans(
        contact_ids, plans or {}, erased=erasures_of(_emails_waiting(parsed, contact_ids))
    )


def _emails_waiting(events: list[ParsedEvent], contact_ids: dict[int, int]) -> set[str]:
    """The emails of these events' people who are not on record."""
    return {
        event.person.email_key
        for event in events
        if event.index not in contact_ids and event.person is not None
    }


def _plans_copy(events: list[ParsedEvent], plans: dict[int, _Plan]) -> set[int]:
    """COPY the planned rows of these events, table by table; returns their indexes."""
    stored: set[int] = set()
    for kind, (model, columns) in _TABLE_OF.items():
        chosen = [event.index for event in events if event.type == kind and event.index in plans]
        if chosen:
            copy_lines(model, ("id", *columns), [plans[index].copy_text for index in chosen])
        stored.update(chosen)
    return stored


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
    contact_ids.update(_people_create(events, contact_ids, actor, now, people_entries))
    late = [event for event in events if event.index not in planned]
    late_plans = _plans_make(late, contact_ids, actor, now) if late else {}
    if late_plans is None:
        late_plans = _insert_returning_ids(late, contact_ids, actor, now)
    else:
        planned.update(late_plans)
        late_plans = {}
    _plans_copy(
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
        waiting = _emails_waiting(events, contact_ids)
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
        except RuleViolation as refusal:
            result.status = "rejected"
            result.errors = [
                {"code": refusal.code, "detail": refusal.detail, "attr": refusal.attr or "kind"}
            ]
            continue
        result.id = sale.pk
        result.status = "created" if created else "duplicate"


def _insert_returning_ids(
    events: list[ParsedEvent], contact_ids: dict[int, int], actor: Actor, now: datetime
) -> dict[int, _Plan]:
    """Without sequences to draw ids from (SQLite): insert, then prepare with the ids."""
    keys = contact_keys(
        {contact_ids[event.index] for event in events if event.type == "disclosure"}
    )
    plans: dict[int, _Plan] = {}
    for kind, (model, columns) in _TABLE_OF.items():
        batch = [event for event in events if event.type == kind]
        ids = rows_insert(
            model,
            columns,
            [_row(event, contact_ids[event.index], now, actor) for event in batch],
            returning_id=True,
        )
        drafts = [
            _draft(event, row_id, contact_ids[event.index], actor, keys)
            for event, row_id in zip(batch, ids, strict=True)
        ]
        for event, row_id, entry in zip(batch, ids, ledger_prepare(drafts), strict=True):
            plans[event.index] = _Plan(row_id, "", entry)
    return plans


_CONSENT_COLUMNS = (
    "contact_id",
    "purpose",
    "granted",
    "source",
    "notice_version",
    "occurred_at",
    "recorded_at",
    "event_source_system",
    "event_external_id",
)
_DISCLOSURE_COLUMNS = (
    "contact_id",
    "key",
    "value",
    "audience",
    "purpose",
    "source",
    "disclosed_at",
    "recorded_at",
    "expires_at",
    "event_source_system",
    "event_external_id",
)
_TABLE_OF: dict[str, tuple[type[models.Model], tuple[str, ...]]] = {
    "touch": (Touch, TOUCH_COLUMNS),
    "consent": (Consent, _CONSENT_COLUMNS),
    "disclosure": (Disclosure, _DISCLOSURE_COLUMNS),
}
_CONTACT_COLUMNS = (
    "email",
    "email_key",
    "first_name",
    "last_name",
    "title",
    "organization_id",
    "created_at",
    "score",
    "qualified",
)


def _person_specs(events: list[ParsedEvent]) -> dict[str, PersonSpec]:
    """One spec per person; the first value given for each field wins."""
    specs: dict[str, PersonSpec] = {}
    for event in events:
        person = event.person
        if person is None:
            continue
        known = specs.setdefault(person.email_key, person)
        if known is not person:
            for name in ("first_name", "last_name", "organization_name", "organization_domain"):
                if not getattr(known, name) and getattr(person, name):
                    setattr(known, name, getattr(person, name))
    return specs


def _people_find(events: list[ParsedEvent]) -> dict[int, int]:
    """Event index -> contact id for people on record (by email, following merges)."""
    specs = _person_specs(events)
    if not specs:
        return {}
    found: dict[str, int] = {}
    merged: dict[str, int] = {}
    for contact_id, email_key, merged_into in _contacts_by_email_key(list(specs)):
        if email_key is None:
            continue
        if merged_into is None:
            found[email_key] = contact_id
        else:
            merged[email_key] = merged_into
    if merged:
        survivors = _survivors(set(merged.values()))
        for email_key, first in merged.items():
            survivor = survivors.get(first)
            if survivor is not None:
                found[email_key] = survivor
    return {
        event.index: found[event.person.email_key]
        for event in events
        if event.person is not None and event.person.email_key in found
    }


def _contacts_by_email_key(email_keys: list[str]) -> list[tuple[int, str | None, int | None]]:
    """(id, email key, merged into) of the contacts with these email keys."""
    # One array parameter on PostgreSQL keeps bench/ingest.py's bulk rate; elsewhere
    # (the embedded SQLite default) the ORM's IN list.
    if connection.vendor != "postgresql":
        return list(
            Contact.objects.filter(email_key__in=email_keys).values_list(
                "id", "email_key", "merged_into_id"
            )
        )
    # One array parameter: building an IN list of 500 values through the ORM
    # costs more than the index probes.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, email_key, merged_into_id FROM {Contact._meta.db_table} "  # noqa: S608
            "WHERE email_key = ANY(%s::varchar[])",
            [email_keys],
        )
        return cursor.fetchall()


def _people_create(
    events: list[ParsedEvent],
    contact_ids: dict[int, int],
    actor: Actor,
    now: datetime,
    drafts: list[LedgerDraft],
) -> dict[int, int]:
    """Create the people (and organizations) not yet on record; event index -> contact id."""
    waiting = [event for event in events if event.index not in contact_ids]
    if not waiting:
        return {}
    # Looked up again under the lock: someone may have created them meanwhile.
    found = _people_find(waiting)
    specs = _person_specs([event for event in waiting if event.index not in found])
    by_email: dict[str, int] = {}
    if specs:
        missing = list(specs.values())
        organizations = _organizations(missing, actor, now, drafts)
        new_ids = rows_insert(
            Contact,
            _CONTACT_COLUMNS,
            [
                (
                    spec.email,
                    spec.email_key,
                    spec.first_name,
                    spec.last_name,
                    "",
                    organizations.get(_organization_key(spec)),
                    now,
                    0,
                    False,
                )
                for spec in missing
            ],
            returning_id=True,
        )
        keys = contact_keys_create(new_ids)
        for spec, contact_id in zip(missing, new_ids, strict=True):
            by_email[spec.email_key] = contact_id
            drafts.append(
                LedgerDraft(
                    actor=actor,
                    action="contact.create",
                    subject_type="contact",
                    subject_id=contact_id,
                    contact_id=contact_id,
                    after=contact_ledger_payload(
                        contact_id=contact_id,
                        organization_id=organizations.get(_organization_key(spec)),
                        email=spec.email,
                        first_name=spec.first_name,
                        last_name=spec.last_name,
                        title="",
                        key=keys[contact_id],
                    ),
                )
            )
    for event in waiting:
        if event.index not in found and event.person is not None:
            found[event.index] = by_email[event.person.email_key]
    return found


def _survivors(first_targets: set[int]) -> dict[int, int | None]:
    """Follow merge chains to the living contact (None when that one was erased)."""
    answer: dict[int, int | None] = {}
    for start in first_targets:
        contact = (
            Contact.objects.filter(pk=start).values("id", "merged_into_id", "erased_at").first()
        )
        seen = set()
        while contact and contact["merged_into_id"] and contact["id"] not in seen:
            seen.add(contact["id"])
            contact = (
                Contact.objects.filter(pk=contact["merged_into_id"])
                .values("id", "merged_into_id", "erased_at")
                .first()
            )
        answer[start] = contact["id"] if contact and contact["erased_at"] is None else None
    return answer


def _organization_key(spec: PersonSpec) -> str:
    if spec.organization_domain:
        return "domain:" + spec.organization_domain
    if spec.organization_name:
        return "name:" + spec.organization_name.lower()
    return ""


def _organizations(
    specs: list[PersonSpec], actor: Actor, now: datetime, drafts: list[LedgerDraft]
) -> dict[str, int]:
    wanted = {_organization_key(spec): spec for spec in specs if _organization_key(spec)}
    if not wanted:
        return {}
    domains = {spec.organization_domain for spec in wanted.values() if spec.organization_domain}
    names = {
        spec.organization_name.lower() for spec in wanted.values() if not spec.organization_domain
    }
    known: dict[str, int] = {}
    for org_id, domain in Organization.objects.filter(domain__in=domains).values_list(
        "id", "domain"
    ):
        known["domain:" + domain] = org_id
    if names:
        rows = (
            Organization.objects.annotate(name_lower=Lower("name"))
            .filter(name_lower__in=names)
            .order_by("id")
            .values_list("id", "name_lower")
        )
        for org_id, name_lower in rows:
            known.setdefault("name:" + name_lower, org_id)
    new = [
        Organization(
            name=spec.organization_name or spec.organization_domain,
            domain=spec.organization_domain,
            created_at=now,
        )
        for key, spec in wanted.items()
        if key not in known
    ]
    Organization.objects.bulk_create(new)
    for organization in new:
        key = (
            ("domain:" + organization.domain)
            if organization.domain
            else ("name:" + organization.name.lower())
        )
        known[key] = organization.pk
        drafts.append(
            LedgerDraft(
                actor=actor,
                action="organization.create",
                subject_type="organization",
                subject_id=organization.pk,
                after=organization_ledger_payload(
                    name=organization.name, domain=organization.domain
                ),
            )
        )
    return known
