"""A person's end of life on the record: merged into another, erased, or exported for a
subject access request."""

from __future__ import annotations

from typing import Any, cast

from django.db import models, transaction
from django.utils import timezone

from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append, ledger_append_many, ledger_lock
from leadrecord.models import LedgerAction

from .. import signals
from ..erasure import ErasedPerson, erased_emails_record
from ..models import (
    Consent,
    Contact,
    ContactKey,
    Disclosure,
    IdempotencyRecord,
    Touch,
)
from ..sealing import contact_keys_forget
from ..selectors import contact_ids_merged_into
from .checks import contacts_changed, require_living


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
        require_living(keep, attr="keep")
        require_living(merge, attr="merge")
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
        contacts_changed([keep.pk], actor)
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
    from ..touch_import import touch_imports_erase, touch_imports_lock_pending

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
        contact_keys_forget()
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


def contact_subject_access_export(*, contact: Contact, actor: Actor) -> dict[str, Any]:
    """The person's data and record, as JSON-ready data; the export itself is on the record."""
    from ..selectors import contact_subject_access_data

    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        require_living(contact)
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
