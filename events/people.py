"""``POST events/``: finding the events' people by email, and creating those not on
record (with their organizations), set-based under the ledger lock."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models.functions import Lower

from contacts.models import (
    Contact,
    Organization,
)
from contacts.sealing import contact_keys_create
from contacts.services import (
    contact_ledger_payload,
    organization_ids_for_emails,
    organization_ledger_payload,
)
from leadrecord.bulk import rows_insert
from leadrecord.ledger import (
    Actor,
    LedgerDraft,
)

from .parsing import ParsedEvent, PersonSpec


def emails_waiting(events: list[ParsedEvent], contact_ids: dict[int, int]) -> set[str]:
    """The emails of these events' people who are not on record."""
    return {
        event.person.email_key
        for event in events
        if event.index not in contact_ids and event.person is not None
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


def people_find(events: list[ParsedEvent]) -> dict[int, int]:
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


def people_create(
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
    found = people_find(waiting)
    specs = _person_specs([event for event in waiting if event.index not in found])
    by_email: dict[str, int] = {}
    if specs:
        missing = list(specs.values())
        organizations = _organizations(missing, actor, now, drafts)
        # People named without an organization join the known one at their email's
        # domain: the same rule as contact_create's.
        at_domain = organization_ids_for_emails(
            spec.email_key for spec in missing if not _organization_key(spec)
        )

        def organization_of(spec: PersonSpec) -> int | None:
            key = _organization_key(spec)
            return organizations.get(key) if key else at_domain.get(spec.email_key)

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
                    organization_of(spec),
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
                        organization_id=organization_of(spec),
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
