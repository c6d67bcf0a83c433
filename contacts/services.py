"""Writes on people: every one checks its rule, writes, and appends to the ledger atomically.

Personal values that a ledger entry carries are sealed with the person's key
(``contacts.sealing``) so that erasure can make them unreadable without
touching the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append, ledger_append_many, ledger_lock
from leadrecord.models import LedgerAction

from . import rules, signals
from .erasure import ErasedPerson, erased_emails_record, erasure_refuse
from .models import (
    JOURNEY_STAGE_KEY,
    TOUCH_COLUMNS,
    Campaign,
    Channel,
    Consent,
    ConsentPurpose,
    Contact,
    ContactKey,
    Disclosure,
    IdempotencyRecord,
    Organization,
    Team,
    Touch,
    TouchKind,
)
from .sealing import contact_keys, contact_keys_create, seal
from .selectors import contact_find_by_email, contact_ids_merged_into


def email_normalize(email: str) -> str:
    """The matching form of an email: trimmed and lower-cased. Raises InvalidInput if invalid."""
    email = email.strip()
    if not rules.email_valid(email):
        raise InvalidInput("invalid", rules.EMAIL_INVALID, attr="email")
    return email.lower()


def domain_normalize(domain: str) -> str:
    return domain.strip().lower().removeprefix("www.").rstrip(".")


@dataclass(frozen=True)
class OrganizationInput:
    name: str = ""
    domain: str = ""


def organization_get_or_create(
    *, name: str, domain: str = "", actor: Actor, occurred_at: datetime | None = None
) -> tuple[Organization, bool]:
    """The organization with this domain (or, without one, this name), created if new."""
    name = name.strip()
    domain = domain_normalize(domain)
    if not name and not domain:
        raise InvalidInput(
            "required", "An organization needs a name or a domain.", attr="organization"
        )
    found = _organization_find(name, domain)
    if found is not None:
        return found, False
    with transaction.atomic():
        # The lock before the insert: POST events/ creates organizations under
        # it, and inserting first, then waiting for it, deadlocks with them.
        ledger_lock()
        found = _organization_find(name, domain)  # created while we waited?
        if found is not None:
            return found, False
        now = timezone.now()
        try:
            with transaction.atomic():
                organization = Organization.objects.create(
                    name=name or domain, domain=domain, created_at=occurred_at or now
                )
        except IntegrityError:
            # Another request created the same domain a moment ago.
            return Organization.objects.get(domain=domain), False
        ledger_append(
            actor=actor,
            action=LedgerAction.ORGANIZATION_CREATE,
            subject_type="organization",
            subject_id=organization.pk,
            after=organization_ledger_payload(name=organization.name, domain=organization.domain),
            occurred_at=occurred_at,
        )
    return organization, True


def organization_ledger_payload(*, name: str, domain: str) -> dict[str, Any]:
    """``organization.create``'s payload, by every path that creates one."""
    return {"name": name, "domain": domain}


def _organization_find(name: str, domain: str) -> Organization | None:
    if domain:
        return Organization.objects.filter(domain=domain).first()
    return Organization.objects.filter(name__iexact=name).order_by("id").first()


def contact_ledger_payload(
    *,
    contact_id: int,
    organization_id: int | None,
    email: str,
    first_name: str,
    last_name: str,
    title: str,
    key: bytes,
) -> dict[str, Any]:
    """``contact.create``'s payload, by every path that creates one: the personal values
    sealed with the person's key."""
    return {
        "organization": organization_id,
        **seal(
            key=key,
            contact_id=contact_id,
            values={
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "title": title,
            },
        ),
    }


def contact_create(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    title: str = "",
    organization: OrganizationInput | Organization | None = None,
    actor: Actor,
    occurred_at: datetime | None = None,
    event_at: datetime | None = None,
) -> tuple[Contact, bool]:
    """The living contact with this email, or a new one. Returns it and whether it was created.

    A known email (trimmed, case-insensitive, also one merged into another
    contact) changes nothing and answers the existing contact. A new one is
    refused (409 ``contact_erased``) when the email belongs to a person erased
    after ``event_at`` (what brings the person in; default ``occurred_at``,
    then now): old data must not bring an erased person back.
    """
    email = email.strip()
    email_key = email_normalize(email)
    existing = contact_find_by_email(email_key)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            # The lock before the insert, as in organization_get_or_create.
            ledger_lock()
            # Under the lock, which erasure holds while it keeps the hashes: an
            # erasure that finished before this sees them.
            erasure_refuse(
                email_key,
                event_at or occurred_at or timezone.now(),
                attr="occurred_at",
            )
            org: Organization | None
            if not isinstance(organization, OrganizationInput):
                org = organization
            else:
                org, _ = organization_get_or_create(
                    name=organization.name,
                    domain=organization.domain,
                    actor=actor,
                    occurred_at=occurred_at,
                )
            now = timezone.now()
            contact = Contact.objects.create(
                email=email,
                email_key=email_key,
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                title=title.strip(),
                organization=org,
                created_at=occurred_at or now,
            )
            key = contact_keys_create([contact.pk])[contact.pk]
            ledger_append(
                actor=actor,
                action=LedgerAction.CONTACT_CREATE,
                subject_type="contact",
                subject_id=contact.pk,
                contact_id=contact.pk,
                after=contact_ledger_payload(
                    contact_id=contact.pk,
                    organization_id=contact.organization_id,
                    email=email,
                    first_name=contact.first_name,
                    last_name=contact.last_name,
                    title=contact.title,
                    key=key,
                ),
                occurred_at=occurred_at,
            )
    except IntegrityError:
        # The same email was created concurrently (the unique constraint
        # caught it); answer the winner, or an erased email's clash as 409.
        existing = contact_find_by_email(email_key)
        if existing is None:
            raise
        return existing, False
    return contact, True


def _require_living(contact: Contact, attr: str | None = None) -> None:
    if contact.erased_at is not None:
        raise Conflict("contact_erased", "This contact has been erased.", attr=attr)
    if contact.merged_into_id is not None:
        raise Conflict(
            "contact_merged",
            f"This contact was merged into contact {contact.merged_into_id}.",
            attr=attr,
        )


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
        _require_living(contact)
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
        ledger_append(
            actor=actor,
            action=LedgerAction.CONSENT_RECORD,
            subject_type="consent",
            subject_id=consent.pk,
            contact_id=contact.pk,
            after=consent_ledger_payload(
                purpose=consent.purpose,
                granted=consent.granted,
                source=consent.source,
                notice_version=consent.notice_version,
            ),
            occurred_at=occurred_at,
        )
        if purpose == ConsentPurpose.SALES_CONTACT:
            _contacts_changed([contact.pk], actor)
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
        _require_living(contact)
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
        ledger_append(
            actor=actor,
            action=LedgerAction.DISCLOSURE_RECORD,
            subject_type="disclosure",
            subject_id=disclosure.pk,
            contact_id=contact.pk,
            after=disclosure_ledger_payload(
                contact_id=contact.pk,
                key=key,
                value=value,
                audience=audience,
                purpose=purpose,
                source=source,
                expires_at=expires_at,
                person_key=person_key,
            ),
            occurred_at=occurred_at,
        )
        _contacts_changed([contact.pk], actor)
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
        _require_living(contact)
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
        _contacts_changed([disclosure.contact_id], actor)
    return disclosure


def _move_references(*, merged: Contact, kept: Contact, actor: Actor) -> dict[str, int]:
    """Move what points at the merged person to the kept one: this app's rows, then what
    the apps above hold (``signals.contact_merging``)."""
    moved = {
        "consents": Consent.objects.filter(contact=merged).update(contact=kept),
        "disclosures": Disclosure.objects.filter(contact=merged).update(contact=kept),
        "touches": Touch.objects.filter(contact=merged).update(contact=kept),
    }
    for _, answer in signals.contact_merging.send(
        sender=Contact, merged=merged, kept=kept, actor=actor
    ):
        moved.update(cast("dict[str, int]", answer))
    return moved


def contact_merge(*, keep: Contact, merge: Contact, actor: Actor, reason: str = "") -> Contact:
    """Merge ``merge`` into ``keep``: its consents, disclosures, touches and deals move over.

    The merged contact stays as a pointer to the kept one, so its email and
    its old ledger entries still lead to the person.
    """
    if keep.pk == merge.pk:
        raise InvalidInput(
            "merge_into_self", "A contact cannot be merged into itself.", attr="merge"
        )
    with transaction.atomic():
        ledger_lock()
        # Lock in id order so two opposite merges cannot deadlock.
        locked = {
            contact.pk: contact
            for contact in Contact.objects.select_for_update()
            .filter(pk__in=[keep.pk, merge.pk])
            .order_by("pk")
        }
        keep, merge = locked[keep.pk], locked[merge.pk]
        _require_living(keep, attr="keep")
        _require_living(merge, attr="merge")
        moved = _move_references(merged=merge, kept=keep, actor=actor)
        now = timezone.now()
        merge.merged_into = keep
        merge.merged_at = now
        merge.save(update_fields=["merged_into", "merged_at"])
        if keep.organization_id is None and merge.organization_id is not None:
            keep.organization_id = merge.organization_id
            keep.save(update_fields=["organization"])
        after = {"kept": keep.pk, "merged": merge.pk, "moved": moved}
        ledger_append_many(
            [
                LedgerDraft(
                    actor=actor,
                    action=LedgerAction.CONTACT_MERGE,
                    subject_type="contact",
                    subject_id=keep.pk,
                    contact_id=contact_id,
                    after=after,
                    reason=reason,
                )
                for contact_id in (keep.pk, merge.pk)
            ]
        )
        _contacts_changed([keep.pk], actor)
    return keep


def contact_erase(*, contact: Contact, actor: Actor, reason: str = "") -> Contact:
    """Erase the person: every personal value, in every table, is gone afterwards.

    Contact rows (this one and any merged into it) stay, emptied, so counts
    and reports keep their totals; disclosed values are emptied; the person's
    keys are deleted, which leaves their sealed ledger values unreadable while
    the ledger itself is untouched and still verifies. Their rows leave the
    touch imports not yet run, and a file name naming them is replaced
    (``touch_import.touch_imports_erase``); kept answers to Idempotency-Keys
    that name them are forgotten. A keyed hash of each email is kept with the
    time (``contacts.erasure``), so that old data about them is refused rather
    than bringing them back. The ledger entry counts what was scrubbed, and
    names no personal value.
    """
    from .touch_import import touch_imports_erase, touch_imports_lock_pending

    with transaction.atomic():
        # Imports lock their job, then the ledger: the same order here.
        pending_imports = touch_imports_lock_pending()
        ledger_lock()
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.erased_at is not None:
            raise Conflict("contact_erased", "This contact has already been erased.")
        if contact.merged_into_id is not None:
            raise Conflict(
                "contact_merged",
                f"Erase contact {contact.merged_into_id}, which this one was merged into.",
            )
        ids = contact_ids_merged_into(contact)
        person = ErasedPerson.of(Contact.objects.filter(id__in=ids))
        now = timezone.now()
        Contact.objects.filter(id__in=ids).update(
            email=None,
            email_key=None,
            first_name="",
            last_name="",
            title="",
            erased_at=now,
        )
        Disclosure.objects.filter(contact_id__in=ids).update(value="")
        ContactKey.objects.filter(contact_id__in=ids).delete()
        signals.contacts_erasing.send(sender=Contact, contact_ids=ids)
        scrubbed = touch_imports_erase(person=person, job_ids=pending_imports)
        scrubbed["idempotency_answers"] = _idempotency_answers_forget(person)
        erased_emails_record(person.emails, erased_at=now)
        ledger_append(
            actor=actor,
            action=LedgerAction.CONTACT_ERASE,
            subject_type="contact",
            subject_id=contact.pk,
            contact_id=contact.pk,
            after={"erased_contacts": ids, "scrubbed": scrubbed},
            reason=reason,
        )
        contact.refresh_from_db()
    return contact


def _idempotency_answers_forget(person: ErasedPerson) -> int:
    """Delete kept answers to ``POST events/`` that name the person (an external id may
    carry an email). A retry with such a key runs afresh and meets the erasure check."""
    if not person.emails:
        return 0
    naming = models.Q()
    for email in person.emails:
        naming |= models.Q(response__icontains=email)
    deleted, _ = IdempotencyRecord.objects.filter(naming).delete()
    return deleted


def _contacts_changed(contact_ids: list[int], actor: Actor) -> None:
    """Scores and qualification follow touches, disclosures and consents (the handoff app
    receives ``signals.contacts_changed``).

    Inside the caller's transaction, with the ledger lock held.
    """
    signals.contacts_changed.send(sender=Contact, contact_ids=contact_ids, actor=actor)


def contact_subject_access_export(*, contact: Contact, actor: Actor) -> dict[str, Any]:
    """The person's data and record, as JSON-ready data; the export itself is on the record."""
    from .selectors import contact_subject_access_data

    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        _require_living(contact)
        data = contact_subject_access_data(contact)
        ledger_append(
            actor=actor,
            action=LedgerAction.CONTACT_EXPORT,
            subject_type="contact",
            subject_id=contact.pk,
            contact_id=contact.pk,
            after={"disclosures": len(data["disclosures"]), "consents": len(data["consents"])},
        )
    return data


# --- channels, campaigns, touches -------------------------------------------------


def channel_create(*, key: str, team: str, actor: Actor) -> Channel:
    """A new channel (managers); keys are unique."""
    if team not in Team.values:
        raise InvalidInput("invalid_choice", f"Unknown team {team!r}.", attr="team")
    with transaction.atomic():
        if Channel.objects.filter(key=key).exists():
            raise InvalidInput("unique", f"Channel {key!r} exists.", attr="key")
        channel = Channel.objects.create(key=key, team=team)
        ledger_append(
            actor=actor,
            action=LedgerAction.CHANNEL_CREATE,
            subject_type="channel",
            subject_id=channel.pk,
            after={"key": key, "team": team},
        )
    return channel


def channel_update(*, channel: Channel, team: str, active: bool, actor: Actor) -> Channel:
    """Change a channel's team or retire it; touches already recorded keep their channel."""
    if team not in Team.values:
        raise InvalidInput("invalid_choice", f"Unknown team {team!r}.", attr="team")
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel.pk)
        before = {"team": channel.team, "active": channel.active}
        channel.team, channel.active = team, active
        channel.save(update_fields=["team", "active"])
        ledger_append(
            actor=actor,
            action=LedgerAction.CHANNEL_UPDATE,
            subject_type="channel",
            subject_id=channel.pk,
            before=before,
            after={"team": team, "active": active},
        )
    return channel


def campaign_create(
    *,
    name: str,
    channel: Channel,
    utm_source: str = "",
    utm_medium: str = "",
    utm_campaign: str = "",
    cost: Decimal = Decimal("0"),
    actor: Actor,
    occurred_at: datetime | None = None,
) -> Campaign:
    """A campaign on a channel, with its UTM tags and cost in the reporting currency."""
    name = name.strip()
    if cost < 0:
        raise InvalidInput("min_value", "A cost cannot be negative.", attr="cost")
    with transaction.atomic():
        if Campaign.objects.filter(name__iexact=name).exists():
            raise InvalidInput("unique", f"A campaign named {name!r} exists.", attr="name")
        campaign = Campaign.objects.create(
            name=name,
            channel=channel,
            utm_source=utm_source.strip(),
            utm_medium=utm_medium.strip(),
            utm_campaign=utm_campaign.strip(),
            cost=cost,
            created_at=occurred_at or timezone.now(),
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.CAMPAIGN_CREATE,
            subject_type="campaign",
            subject_id=campaign.pk,
            after={
                "name": campaign.name,
                "channel": channel.key,
                "utm_source": campaign.utm_source,
                "utm_medium": campaign.utm_medium,
                "utm_campaign": campaign.utm_campaign,
                "cost": str(campaign.cost),
            },
            occurred_at=occurred_at,
        )
    return campaign


def touch_ledger_payload(
    *,
    channel_key: str,
    campaign_id: int | None,
    kind: str,
    source_system: str,
    external_id: str | None,
) -> dict[str, Any]:
    """``touch.record``'s payload, by every path."""
    return {
        "channel": channel_key,
        "campaign": campaign_id,
        "kind": kind,
        "source_system": source_system,
        "external_id": external_id,
    }


def _touch_field(column: str) -> models.Field[Any, Any]:
    return cast("models.Field[Any, Any]", Touch._meta.get_field(column))


def _touch_insert_if_new_and_living(touch: Touch) -> int | None:
    """Insert the touch if its contact is living and its external id is new; its id, or None.

    One statement where a lookup, a duplicate check and an insert were three
    (the hot path of ``POST touches/``). Runs under the ledger lock, so no
    other writer can add the same external id or merge or erase the contact
    meanwhile; the unique constraint stays the last word.
    """
    table = connection.ops.quote_name(Touch._meta.db_table)
    contacts = connection.ops.quote_name(Contact._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(TOUCH_COLUMNS)}) "  # noqa: S608 -- model names
            f"SELECT {', '.join(['%s'] * len(TOUCH_COLUMNS))} FROM {contacts} "
            "WHERE id = %s AND erased_at IS NULL AND merged_into_id IS NULL "
            "ON CONFLICT DO NOTHING RETURNING id",
            [
                *(
                    _touch_field(column).get_db_prep_value(getattr(touch, column), connection)
                    for column in TOUCH_COLUMNS
                ),
                touch.contact_id,
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def touch_record(
    *,
    contact: Contact,
    channel: Channel,
    campaign: Campaign | None = None,
    kind: str = TouchKind.OTHER,
    occurred_at: datetime | None = None,
    source_system: str = "",
    external_id: str | None = None,
    actor: Actor,
) -> tuple[Touch, bool]:
    """Record a touch; a repeated (source_system, external_id) answers the first one.

    Returns the touch and whether it was created.
    """
    rules.touch_check(channel=channel, campaign=campaign, kind=kind)
    now = timezone.now()
    touch = Touch(
        contact=contact,
        channel=channel,
        campaign=campaign,
        kind=kind,
        occurred_at=occurred_at or now,
        recorded_at=now,
        source_system=source_system,
        external_id=external_id or None,
        recorded_by_id=actor.user_id,
    )
    with transaction.atomic():
        # The ledger lock first: the duplicate check and the insert are then
        # one step for every writer, however many retry at once.
        ledger_lock()
        touch.pk = _touch_insert_if_new_and_living(touch)
        if touch.pk is None:
            # Nothing inserted: the external id is known (answer the first
            # touch), or the contact is no longer living.
            if external_id:
                existing = Touch.objects.filter(
                    source_system=source_system, external_id=external_id
                ).first()
                if existing is not None:
                    return existing, False
            _require_living(Contact.objects.get(pk=contact.pk), attr="contact")
            raise RuntimeError(f"touch for living contact {contact.pk} not inserted")
        ledger_append(
            actor=actor,
            action=LedgerAction.TOUCH_RECORD,
            subject_type="touch",
            subject_id=touch.pk,
            contact_id=contact.pk,
            after=touch_ledger_payload(
                channel_key=channel.key,
                campaign_id=touch.campaign_id,
                kind=touch.kind,
                source_system=touch.source_system,
                external_id=touch.external_id,
            ),
            occurred_at=occurred_at,
        )
        _contacts_changed([contact.pk], actor)
    touch._state.adding = False
    return touch, True
