"""The buyer's side, read: published forms, their submissions, what a known browser
already told us (progressive profiling)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from contacts.models import Audience, Consent, ConsentPurpose, Contact, Disclosure
from contacts.sealing import contact_keys, unseal
from contacts.selectors import (
    ConsentState,
    consent_history,
    consents_current,
    contact_ids_merged_into,
)
from handoff.models import Handoff
from leadrecord.checkpoints import ledger_checkpoint_latest
from leadrecord.models import ActorKind, LedgerAction, LedgerEntry
from leadrecord.remembered import Remembered
from leadrecord.roles import Role

from .models import BuyerForm, ErasureRequest, FormSubmission
from .services import visitor_for_token

FORM_ROLES = (Role.MARKETER, Role.MANAGER)


def forms_all() -> QuerySet[BuyerForm]:
    return BuyerForm.objects.select_related("campaign")


# How long a process keeps a published form it read. Every view and post of a form
# reads it, and only publishing changes one (a slug, its questions and consents never
# do). A form saved or deleted in this process is forgotten at once (receivers.py);
# another process may show it this long after it was unpublished, but nothing it
# sends lands: the submission's insert checks the form is published
# (services.form_submit).
FORM_REMEMBERED_SECONDS = 5.0
_forms_published: Remembered[str, BuyerForm | None] = Remembered(FORM_REMEMBERED_SECONDS)


def form_published(slug: str) -> BuyerForm | None:
    return _forms_published.get(
        slug, lambda: BuyerForm.objects.filter(slug=slug, published=True).first()
    )


def form_published_forget(slug: str) -> None:
    """The form changed: the next page reads it again."""
    _forms_published.forget(slug)


def form_submissions(form: BuyerForm) -> QuerySet[FormSubmission]:
    return FormSubmission.objects.filter(form=form).select_related("contact", "campaign")


def analytics_granted(contact_id: int) -> bool:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None or not contact.is_living:
        return False
    return any(
        state.purpose == ConsentPurpose.ANALYTICS and state.granted
        for state in consents_current(contact)
    )


def keys_already_disclosed(visitor_token: str | None) -> frozenset[str]:
    """The disclosure keys a known, consenting browser's person has on record now.

    Only a visitor id (set with analytics consent) makes a browser known, and
    only while that consent stands; a form then leaves these keys out.
    """
    visitor = visitor_for_token(visitor_token)
    if visitor is None or visitor.contact_id is None:
        return frozenset()
    if not analytics_granted(visitor.contact_id):
        return frozenset()
    now = timezone.now()
    keys = (
        Disclosure.objects.filter(contact_id=visitor.contact_id, withdrawn_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("key", flat=True)
    )
    return frozenset(keys)


def submissions_by_campaign(form: BuyerForm) -> list[dict[str, object]]:
    """How many people sent the form, per campaign (none: the form's own page)."""
    rows = (
        FormSubmission.objects.filter(form=form)
        .values("campaign__name")
        .annotate(count=Count("id"))
        .order_by("-count", "campaign__name")
    )
    return [dict(row) for row in rows]


# --- the person's portal --------------------------------------------------------------

AUDIENCE_WORDS = {
    Audience.MARKETING.value: "Marketing only",
    Audience.SALES.value: "Sales only",
    Audience.ALL.value: "Marketing and sales",
}


@dataclass(frozen=True)
class PortalRecord:
    contact: Contact
    consents: list[ConsentState]
    consent_history: list[Consent]
    disclosures: list[Disclosure]
    handoffs: list[Handoff]
    erasure_requested: bool


def portal_record(contact: Contact) -> PortalRecord:
    """Everything the person may see about themself: their own record, whole, and
    nobody else's; of their handoffs only the status (never staff's notes)."""
    ids = contact_ids_merged_into(contact)
    now = timezone.now()
    disclosures = list(
        Disclosure.objects.filter(contact_id__in=ids, withdrawn_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("key", "-disclosed_at", "-id")
    )
    return PortalRecord(
        contact=contact,
        consents=consents_current(contact),
        consent_history=list(consent_history(contact).order_by("-occurred_at", "-id")),
        disclosures=disclosures,
        handoffs=list(
            Handoff.objects.filter(contact_id__in=ids)
            .only("id", "status", "occurred_at", "contact_id")
            .order_by("-occurred_at")
        ),
        erasure_requested=ErasureRequest.objects.filter(contact_id__in=ids).exists(),
    )


def erasure_requests_waiting() -> QuerySet[ErasureRequest]:
    """The privacy officer's queue: people who asked, from their portal, to be erased."""
    return ErasureRequest.objects.select_related("contact").order_by("requested_at", "id")


def portal_changes(contact: Contact) -> QuerySet[LedgerEntry]:
    """The changes the person made themself (forms they sent, portal changes), newest first."""
    return LedgerEntry.objects.filter(
        contact_id__in=contact_ids_merged_into(contact), actor_kind=ActorKind.PERSON
    ).order_by("-seq")


def action_label(action: str) -> str:
    return str(LedgerAction(action).label) if action in LedgerAction.values else action


def portal_receipt(contact: Contact, seq: int) -> dict[str, object] | None:
    """A receipt of one of the person's own changes: the ledger entry as recorded (its
    sealed values opened for them), and the latest signed checkpoint, if one covers it.

    None for an entry that is not one of their own changes."""
    entry = portal_changes(contact).filter(seq=seq).first()
    if entry is None:
        return None
    key = contact_keys([entry.contact_id or 0]).get(entry.contact_id or 0)
    checkpoint = ledger_checkpoint_latest()
    return {
        "what": action_label(entry.action),
        "entry": {
            "seq": entry.seq,
            "action": entry.action,
            "occurred_at": entry.occurred_at.isoformat(),
            "recorded_at": entry.recorded_at.isoformat(),
            "actor": entry.actor_label,
            "subject_type": entry.subject_type,
            "subject_id": entry.subject_id,
            "before": entry.before,
            "after": entry.after,
            "opened": {
                "before": unseal(key=key, contact_id=entry.contact_id or 0, payload=entry.before),
                "after": unseal(key=key, contact_id=entry.contact_id or 0, payload=entry.after),
            },
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        },
        "checkpoint": (
            checkpoint.as_json() if checkpoint is not None and checkpoint.seq >= entry.seq else None
        ),
    }
