"""People and their organizations: normalized emails and domains, organizations found or
created, contacts created, and the ledger payloads of both.

Personal values that a ledger entry carries are sealed with the person's key
(``contacts.sealing``) so that erasure can make them unreadable without touching the
ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.utils import timezone

from leadrecord.bulk import rows_insert
from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor, ledger_append, ledger_lock, ledger_lock_or_recheck
from leadrecord.models import LedgerAction

from .. import rules
from ..erasure import erasure_refuse
from ..models import (
    CONTACT_COLUMNS,
    Contact,
    Organization,
)
from ..sealing import contact_keys_create, seal
from ..selectors import contact_find_by_email, organization_find
from .organizations import organization_for_email


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
    return organization_find(name, domain)


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

    Without an organization, a person whose email is at a known organization's
    domain (not a free-mail one) is linked to it.

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
            org: Organization | None = None
            if isinstance(organization, OrganizationInput):
                # Before the lock: it finds a known organization without it (every
                # other writer waits while this one holds it) and takes it itself
                # to create one; undone with the rest if the person is refused.
                org, _ = organization_get_or_create(
                    name=organization.name,
                    domain=organization.domain,
                    actor=actor,
                    occurred_at=occurred_at,
                )
            # The lock before the insert, as in organization_get_or_create; a form sent
            # by a new person defers it (leadrecord.ledger.ledger_deferred), and its
            # flush rechecks what this reads: erasures, and organizations made since.
            ledger_lock_or_recheck((LedgerAction.CONTACT_ERASE, LedgerAction.ORGANIZATION_CREATE))
            # Under the lock, which erasure holds while it keeps the hashes: an
            # erasure that finished before this sees them.
            erasure_refuse(
                email_key,
                event_at or occurred_at or timezone.now(),
                attr="occurred_at",
            )
            if organization is None:
                # Someone at a known organization's domain works there.
                org = organization_for_email(email_key)
            elif not isinstance(organization, OrganizationInput):
                org = organization
            now = timezone.now()
            contact = Contact(
                email=email,
                email_key=email_key,
                first_name=first_name.strip(),
                last_name=last_name.strip(),
                title=title.strip(),
                organization=org,
                created_at=occurred_at or now,
            )
            # One insert without the ORM's query building (every form post by a new
            # person makes one); a clash on the email is the same IntegrityError.
            contact.pk = rows_insert(
                Contact,
                CONTACT_COLUMNS,
                [[getattr(contact, column) for column in CONTACT_COLUMNS]],
                returning_id=True,
            )[0]
            contact._state.adding = False
            contact._state.db = DEFAULT_DB_ALIAS
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
