"""The person's portal, written: sign-in links sent and used, and every change a person
makes to what they shared, each on the ledger with the person as actor.

A person is only ever given their own record: every service takes the signed-in
contact and refuses (``NotFound``, as for an unknown id) anything that is not
theirs.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from contacts.models import (
    JOURNEY_STAGE_KEY,
    Audience,
    ConsentPurpose,
    Contact,
    Disclosure,
    DisclosurePurpose,
    DisclosureSource,
)
from contacts.selectors import contact_find_by_email, contact_ids_merged_into
from contacts.services import (
    consent_record,
    contact_subject_access_export,
    disclosure_record,
    disclosure_withdraw,
    email_normalize,
)
from leadrecord.errors import Conflict, InvalidInput, NotFound
from leadrecord.ledger import Actor, ledger_append, ledger_lock
from leadrecord.models import LedgerAction

from .models import ErasureRequest, PortalLink, Visitor
from .services import person_of

# The promise to the person: a link works once, for half an hour.
PORTAL_LINK_LIFETIME = timedelta(minutes=30)
_LINK_SALT = "buyers.portal-link"
PORTAL_SOURCE = "portal"


def portal_actor(contact: Contact) -> Actor:
    return Actor.person(contact.pk, PORTAL_SOURCE)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def portal_link_request(*, email: str, link_for: Any) -> None:
    """Send a sign-in link to a known person's email; an unknown one is sent nothing.

    The caller answers the same in both cases. ``link_for(token)`` makes the link's
    absolute address. The mail goes after the commit: plain text and HTML, no
    tracking pixel, no tracked links.
    """
    contact = contact_find_by_email(email_normalize(email))
    if contact is None or not contact.email:
        return
    secret = secrets.token_urlsafe(32)
    token = signing.dumps(secret, salt=_LINK_SALT)
    address = contact.email
    with transaction.atomic():
        PortalLink.objects.create(
            token_hash=_secret_hash(secret), contact=contact, created_at=timezone.now()
        )
        link = link_for(token)
        transaction.on_commit(lambda: _link_send(address, link))


def _link_send(address: str, link: str) -> None:
    context = {"link": link, "minutes": int(PORTAL_LINK_LIFETIME.total_seconds() // 60)}
    message = EmailMultiAlternatives(
        subject="Your link to see and change what you shared",
        body=render_to_string("buyers/email/portal_link.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    message.attach_alternative(
        render_to_string("buyers/email/portal_link.html", context), "text/html"
    )
    message.send()


def portal_link_check(token: str) -> None:
    """Whether the link can still be used (its confirm page says so before the button)."""
    _link_for_update(token, lock=False)


def _link_for_update(token: str, *, lock: bool) -> PortalLink:
    refused = Conflict(
        "link_invalid", "This link cannot be used any more: ask for a new one below.", attr="token"
    )
    try:
        secret = signing.loads(token, salt=_LINK_SALT, max_age=PORTAL_LINK_LIFETIME)
    except signing.BadSignature:
        raise refused from None
    links = PortalLink.objects.select_for_update() if lock else PortalLink.objects.all()
    link = links.filter(token_hash=_secret_hash(str(secret))).first()
    if (
        link is None
        or link.used_at is not None
        or link.created_at + PORTAL_LINK_LIFETIME < timezone.now()
    ):
        raise refused
    return link


def portal_enter(*, token: str) -> Contact:
    """Use a sign-in link: once, within 30 minutes, for a person still on record."""
    with transaction.atomic():
        ledger_lock()
        link = _link_for_update(token, lock=True)
        contact = person_of(link.contact)
        if not contact.is_living:
            raise Conflict("link_invalid", "This link cannot be used any more.", attr="token")
        link.used_at = timezone.now()
        link.save(update_fields=["used_at"])
        ledger_append(
            actor=portal_actor(contact),
            action=LedgerAction.PORTAL_ENTER,
            subject_type="portal_link",
            subject_id=link.pk,
            contact_id=contact.pk,
        )
    return contact


# --- what the person changes ----------------------------------------------------------


def _own_disclosure(contact: Contact, disclosure_id: int) -> Disclosure:
    disclosure = Disclosure.objects.filter(
        pk=disclosure_id,
        contact_id__in=contact_ids_merged_into(contact),
        withdrawn_at__isnull=True,
    ).first()
    if disclosure is None:
        raise NotFound("not_found", "No such disclosure.", attr="disclosure")
    return disclosure


def portal_disclosure_withdraw(*, contact: Contact, disclosure_id: int) -> Disclosure:
    """The person takes back something they shared: nobody on staff sees it any more."""
    disclosure = _own_disclosure(contact, disclosure_id)
    return disclosure_withdraw(disclosure=disclosure, actor=portal_actor(contact))


def portal_disclosure_audience(
    *, contact: Contact, disclosure_id: int, audience: str
) -> Disclosure:
    """The person changes who sees something they shared, narrower or wider.

    A disclosure's audience is part of what was said to whom, so the old one is
    withdrawn and the same value recorded again, in their own words (source
    ``self``), for the new audience; both steps are on the ledger, together.
    """
    if audience not in Audience.values:
        raise InvalidInput("invalid_choice", "Choose who may see this.", attr="audience")
    actor = portal_actor(contact)
    with transaction.atomic():
        disclosure = _own_disclosure(contact, disclosure_id)
        if disclosure.audience == audience:
            return disclosure
        disclosure_withdraw(disclosure=disclosure, actor=actor)
        return disclosure_record(
            contact=contact,
            key=disclosure.key,
            value=disclosure.value,
            audience=audience,
            purpose=disclosure.purpose,
            source=DisclosureSource.SELF,
            expires_at=disclosure.expires_at,
            actor=actor,
        )


def portal_stage_set(*, contact: Contact, stage: str, audience: str) -> Disclosure:
    """The person says where they are. ``ready_to_talk`` told to sales opens a handoff
    (the system does, under the active ruleset), with no staff member in between."""
    purpose = (
        DisclosurePurpose.SALES_CONTACT
        if audience in (Audience.SALES, Audience.ALL)
        else DisclosurePurpose.QUALIFICATION
    )
    return disclosure_record(
        contact=contact,
        key=JOURNEY_STAGE_KEY,
        value=stage,
        audience=audience,
        purpose=purpose,
        source=DisclosureSource.SELF,
        actor=portal_actor(contact),
    )


def portal_consent_set(*, contact: Contact, purpose: str, granted: bool) -> None:
    """The person grants or withdraws a consent. Withdrawing ``analytics`` forgets their
    browsers' visitor ids at once (and the visits kept under them)."""
    with transaction.atomic():
        consent_record(
            contact=contact,
            purpose=purpose,
            granted=granted,
            source=PORTAL_SOURCE,
            actor=portal_actor(contact),
        )
        if purpose == ConsentPurpose.ANALYTICS and not granted:
            Visitor.objects.filter(contact_id__in=contact_ids_merged_into(contact)).delete()


def portal_export(*, contact: Contact) -> dict[str, Any]:
    """Everything held about the person (the subject-access export), on the record."""
    return contact_subject_access_export(contact=contact, actor=portal_actor(contact))


def portal_erasure_request(*, contact: Contact) -> ErasureRequest:
    """The person asks to be erased: queued for the privacy officer, who erases
    (docs/erasure.md). Asking again while a request waits changes nothing."""
    with transaction.atomic():
        ledger_lock()
        waiting = ErasureRequest.objects.filter(contact=contact).first()
        if waiting is not None:
            return waiting
        request = ErasureRequest.objects.create(contact=contact, requested_at=timezone.now())
        ledger_append(
            actor=portal_actor(contact),
            action=LedgerAction.ERASURE_REQUEST,
            subject_type="erasure_request",
            subject_id=request.pk,
            contact_id=contact.pk,
        )
    return request
