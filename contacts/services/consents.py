"""Consents and disclosures: recorded, withdrawn, and the ledger payloads they carry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone

from leadrecord.bulk import rows_insert
from leadrecord.errors import Conflict
from leadrecord.ledger import (
    Actor,
    LedgerDraft,
    ledger_append,
    ledger_append_many,
    ledger_lock,
    ledger_lock_or_recheck,
)
from leadrecord.models import LedgerAction

from .. import rules, signals
from ..models import (
    CONSENT_COLUMNS,
    DISCLOSURE_COLUMNS,
    JOURNEY_STAGE_KEY,
    Consent,
    ConsentPurpose,
    Contact,
    Disclosure,
)
from ..sealing import contact_keys, seal
from .checks import contacts_changed, living_refusal, require_living


def consent_ledger_payload(
    *,
    purpose: str,
    granted: bool,
    source: str,
    notice_version: str,
    source_system: str = "",
    external_id: str | None = None,
) -> dict[str, Any]:
    """``consent.record``'s payload, by every path; an event's (``POST events/``) also names
    its source system and external id."""
    payload: dict[str, Any] = {
        "purpose": purpose,
        "granted": granted,
        "source": source,
        "notice_version": notice_version,
    }
    if external_id is not None:
        payload["source_system"] = source_system
        payload["external_id"] = external_id
    return payload


def _consent_entry(consent: Consent, *, actor: Actor, occurred_at: datetime | None) -> LedgerDraft:
    """The ledger entry of a consent row, for the single and the set-based service."""
    return LedgerDraft(
        actor=actor,
        action=LedgerAction.CONSENT_RECORD,
        subject_type="consent",
        subject_id=consent.pk,
        contact_id=consent.contact_id,
        after=consent_ledger_payload(
            purpose=consent.purpose,
            granted=consent.granted,
            source=consent.source,
            notice_version=consent.notice_version,
        ),
        occurred_at=occurred_at,
    )


def _disclosure_entry(
    disclosure: Disclosure, *, person_key: bytes, actor: Actor, occurred_at: datetime | None
) -> LedgerDraft:
    """The ledger entry of a disclosure row (its value sealed with ``person_key``)."""
    return LedgerDraft(
        actor=actor,
        action=LedgerAction.DISCLOSURE_RECORD,
        subject_type="disclosure",
        subject_id=disclosure.pk,
        contact_id=disclosure.contact_id,
        after=disclosure_ledger_payload(
            contact_id=disclosure.contact_id,
            key=disclosure.key,
            value=disclosure.value,
            audience=disclosure.audience,
            purpose=disclosure.purpose,
            source=disclosure.source,
            expires_at=disclosure.expires_at,
            person_key=person_key,
        ),
        occurred_at=occurred_at,
    )


def consent_record(
    *,
    contact: Contact,
    purpose: str,
    granted: bool,
    source: str,
    notice_version: str = "",
    actor: Actor,
    occurred_at: datetime | None = None,
) -> Consent:
    """Record a grant or withdrawal of consent for one purpose; history is kept."""
    rules.consent_check(purpose=purpose)
    with transaction.atomic():
        ledger_lock()
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        require_living(contact)
        now = timezone.now()
        consent = Consent.objects.create(
            contact=contact,
            purpose=purpose,
            granted=granted,
            source=source.strip(),
            notice_version=notice_version.strip(),
            occurred_at=occurred_at or now,
            recorded_at=now,
        )
        ledger_append_many([_consent_entry(consent, actor=actor, occurred_at=occurred_at)])
        if purpose == ConsentPurpose.SALES_CONTACT:
            contacts_changed([contact.pk], actor)
    return consent


def disclosure_ledger_payload(
    *,
    contact_id: int,
    key: str,
    value: str,
    audience: str,
    purpose: str,
    source: str,
    expires_at: datetime | None,
    person_key: bytes,
    source_system: str = "",
    external_id: str | None = None,
) -> dict[str, Any]:
    """``disclosure.record``'s payload, by every path: the value sealed with the person's
    key; an event's (``POST events/``) also names its source system and external id."""
    payload: dict[str, Any] = {
        "key": key,
        "audience": audience,
        "purpose": purpose,
        "source": source,
        "expires_at": expires_at.isoformat() if expires_at else None,
        **seal(key=person_key, contact_id=contact_id, values={"value": value}),
    }
    if external_id is not None:
        payload["source_system"] = source_system
        payload["external_id"] = external_id
    return payload


def disclosure_record(
    *,
    contact: Contact,
    key: str,
    value: str,
    audience: str,
    purpose: str,
    source: str,
    expires_at: datetime | None = None,
    actor: Actor,
    occurred_at: datetime | None = None,
) -> Disclosure:
    """Record something the person shared, with its audience and purpose.

    The value goes into the ledger sealed with the person's key.
    """
    value = value.strip()
    disclosed_at = occurred_at or timezone.now()
    rules.disclosure_check(
        key=key,
        value=value,
        audience=audience,
        purpose=purpose,
        source=source,
        expires_at=expires_at,
        disclosed_at=disclosed_at,
    )
    with transaction.atomic():
        ledger_lock()
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        require_living(contact)
        disclosure = Disclosure.objects.create(
            contact=contact,
            key=key,
            value=value,
            audience=audience,
            purpose=purpose,
            source=source,
            disclosed_at=disclosed_at,
            recorded_at=timezone.now(),
            expires_at=expires_at,
        )
        person_key = contact_keys([contact.pk])[contact.pk]
        ledger_append_many(
            [
                _disclosure_entry(
                    disclosure, person_key=person_key, actor=actor, occurred_at=occurred_at
                )
            ]
        )
        contacts_changed([contact.pk], actor)
        if key == JOURNEY_STAGE_KEY:
            # A ready_to_talk told to sales alone: the system hands the person off.
            signals.journey_stages_recorded.send(sender=Contact, disclosure_ids=[disclosure.pk])
    return disclosure


def disclosure_withdraw(
    *, disclosure: Disclosure, actor: Actor, occurred_at: datetime | None = None
) -> Disclosure:
    """Withdraw a disclosure: from now on nobody sees it but the person's own export."""
    with transaction.atomic():
        ledger_lock()
        disclosure = Disclosure.objects.select_for_update().get(pk=disclosure.pk)
        if disclosure.withdrawn_at is not None:
            raise Conflict("already_withdrawn", "This disclosure is already withdrawn.")
        contact = Contact.objects.get(pk=disclosure.contact_id)
        require_living(contact)
        disclosure.withdrawn_at = occurred_at or timezone.now()
        disclosure.save(update_fields=["withdrawn_at"])
        ledger_append(
            actor=actor,
            action=LedgerAction.DISCLOSURE_WITHDRAW,
            subject_type="disclosure",
            subject_id=disclosure.pk,
            contact_id=disclosure.contact_id,
            before={"withdrawn": False},
            after={"key": disclosure.key, "audience": disclosure.audience, "withdrawn": True},
            occurred_at=occurred_at,
        )
        contacts_changed([disclosure.contact_id], actor)
    return disclosure


# What ends a person's life on the record: a check that they are living, made without
# the ledger lock, holds while none of these was recorded.
_LIVING_CHANGES = (LedgerAction.CONTACT_ERASE, LedgerAction.CONTACT_MERGE)


@dataclass(frozen=True)
class ConsentInput:
    """One consent of several recorded at once (``person_answers_record``)."""

    purpose: str
    granted: bool
    source: str
    notice_version: str = ""


@dataclass(frozen=True)
class DisclosureInput:
    """One disclosure of several recorded at once (``person_answers_record``)."""

    key: str
    value: str
    audience: str
    purpose: str
    source: str
    expires_at: datetime | None = None


def person_answers_record(
    *,
    contact: Contact,
    consents: Sequence[ConsentInput] = (),
    disclosures: Sequence[DisclosureInput] = (),
    actor: Actor,
    occurred_at: datetime | None = None,
) -> tuple[list[Consent], list[Disclosure]]:
    """Several consents and disclosures of one person at once (a form sent).

    The same checks, rows, ledger payloads (consents first, then disclosures, each
    in the given order) and signals as ``consent_record`` and ``disclosure_record``
    called one by one, but written set-based: one lock of the person, one insert
    per table, one ledger append, and scores followed once, after all of them (so
    a qualification they cause is on the ledger after them, not between them).
    All checked before anything is written.
    """
    for consent_in in consents:
        rules.consent_check(purpose=consent_in.purpose)
    disclosed_at = occurred_at or timezone.now()
    cleaned = [
        DisclosureInput(
            key=item.key,
            value=item.value.strip(),
            audience=item.audience,
            purpose=item.purpose,
            source=item.source,
            expires_at=item.expires_at,
        )
        for item in disclosures
    ]
    for item in cleaned:
        rules.disclosure_check(
            key=item.key,
            value=item.value,
            audience=item.audience,
            purpose=item.purpose,
            source=item.source,
            expires_at=item.expires_at,
            disclosed_at=disclosed_at,
        )
    if not consents and not cleaned:
        return [], []
    # No savepoint of its own: a form sent records its answers inside its own
    # transaction, where a savepoint was two more round trips. So nothing is
    # raised inside this block but what undoes the caller's whole transaction
    # anyway; a refusal (the person is not living) is raised after it, having
    # written nothing.
    with transaction.atomic(savepoint=False):
        # Deferred in a form sent by a new person (leadrecord.ledger.ledger_deferred):
        # its flush rechecks that the person was neither erased nor merged meanwhile.
        ledger_lock_or_recheck(_LIVING_CHANGES)
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        refusal = living_refusal(contact)
        if refusal is None:
            written = _answers_write(
                contact=contact,
                consents=consents,
                disclosures=cleaned,
                disclosed_at=disclosed_at,
                actor=actor,
                occurred_at=occurred_at,
            )
    if refusal is not None:
        raise refusal
    return written


_Answer = TypeVar("_Answer", Consent, Disclosure)


def _rows_insert(
    model: type[_Answer], columns: Sequence[str], rows: list[_Answer]
) -> list[_Answer]:
    """``bulk_create`` for a form's few answers, without its query building: one insert,
    the same rows (``columns``: every column a new answer sets; the id comes from the
    sequence)."""
    ids = rows_insert(
        model,
        columns,
        [[getattr(row, column) for column in columns] for row in rows],
        returning_id=True,
    )
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS
    return rows


def _answers_write(
    *,
    contact: Contact,
    consents: Sequence[ConsentInput],
    disclosures: Sequence[DisclosureInput],
    disclosed_at: datetime,
    actor: Actor,
    occurred_at: datetime | None,
) -> tuple[list[Consent], list[Disclosure]]:
    """``person_answers_record``'s writes, checked and with the person locked."""
    now = timezone.now()
    consent_rows = _rows_insert(
        Consent,
        CONSENT_COLUMNS,
        [
            Consent(
                contact=contact,
                purpose=item.purpose,
                granted=item.granted,
                source=item.source.strip(),
                notice_version=item.notice_version.strip(),
                occurred_at=occurred_at or now,
                recorded_at=now,
            )
            for item in consents
        ],
    )
    disclosure_rows = _rows_insert(
        Disclosure,
        DISCLOSURE_COLUMNS,
        [
            Disclosure(
                contact=contact,
                key=item.key,
                value=item.value,
                audience=item.audience,
                purpose=item.purpose,
                source=item.source,
                disclosed_at=disclosed_at,
                recorded_at=now,
                expires_at=item.expires_at,
            )
            for item in disclosures
        ],
    )
    drafts = [_consent_entry(row, actor=actor, occurred_at=occurred_at) for row in consent_rows]
    if disclosure_rows:
        person_key = contact_keys([contact.pk])[contact.pk]
        drafts += [
            _disclosure_entry(row, person_key=person_key, actor=actor, occurred_at=occurred_at)
            for row in disclosure_rows
        ]
    ledger_append_many(drafts, return_entries=False)
    if disclosure_rows or any(row.purpose == ConsentPurpose.SALES_CONTACT for row in consent_rows):
        contacts_changed([contact.pk], actor)
    stages = [row.pk for row in disclosure_rows if row.key == JOURNEY_STAGE_KEY]
    if stages:
        # A ready_to_talk told to sales alone: the system hands the person off.
        signals.journey_stages_recorded.send(sender=Contact, disclosure_ids=stages)
    return consent_rows, disclosure_rows
