"""What the contacts app asks of handoff records when people are merged or erased."""

from __future__ import annotations

from django.utils import timezone

from contacts.models import (
    Contact,
)
from leadrecord.ledger import Actor, LedgerDraft, ledger_append_many
from leadrecord.models import LedgerAction

from ..models import (
    DealContact,
    Handoff,
    HandoffStatus,
    Qualification,
    RejectReason,
)
from .sourcing import MARKETING_KNOWS


def contact_references_move(*, merged: Contact, kept: Contact, actor: Actor) -> dict[str, int]:
    """A merge moves the merged person's handoffs, deal memberships and qualifications.

    Called inside the merge's transaction (ledger lock held). When both have a
    pending handoff, the merged person's closes as a duplicate; but when only
    the merged person's is one marketing may know of, the kept person's closes
    instead, so that the merge does not tell marketing of a handoff it may not
    know of.
    """
    moved: dict[str, int] = {}
    kept_pending = list(
        Handoff.objects.select_for_update().filter(contact=kept, status=HandoffStatus.PENDING)
    )
    merged_pending = list(
        Handoff.objects.select_for_update().filter(contact=merged, status=HandoffStatus.PENDING)
    )
    if kept_pending and merged_pending:
        hidden_kept = all(h.say_so_audience not in MARKETING_KNOWS for h in kept_pending)
        if hidden_kept and any(h.say_so_audience in MARKETING_KNOWS for h in merged_pending):
            duplicate, note = kept_pending, f"Merged with contact {merged.pk}, whose handoff stays."
            about = kept.pk
        else:
            duplicate = merged_pending
            note = f"Merged into contact {kept.pk}, which has its own handoff."
            about = merged.pk
        for handoff in duplicate:
            handoff.status = HandoffStatus.REJECTED
            handoff.reason = RejectReason.DUPLICATE
            handoff.decision_note = note
            handoff.decided_at = timezone.now()
            handoff.save(update_fields=["status", "reason", "decision_note", "decided_at"])
        ledger_append_many(
            [
                LedgerDraft(
                    actor=actor,
                    action=LedgerAction.HANDOFF_REJECT,
                    subject_type="handoff",
                    subject_id=handoff.pk,
                    contact_id=about,
                    before={"status": HandoffStatus.PENDING},
                    after={"status": HandoffStatus.REJECTED, "reason": RejectReason.DUPLICATE},
                    reason=handoff.decision_note,
                )
                for handoff in duplicate
            ]
        )
    moved["handoffs"] = Handoff.objects.filter(contact=merged).update(contact=kept)
    both = DealContact.objects.filter(contact=kept).values_list("deal_id", flat=True)
    DealContact.objects.filter(contact=merged, deal_id__in=list(both)).delete()
    moved["deal_memberships"] = DealContact.objects.filter(contact=merged).update(contact=kept)
    Qualification.objects.filter(contact=merged).update(contact=kept)
    return moved


def contact_personal_data_erase(contact_ids: list[int]) -> None:
    """Erasure: free-text notes about the person may hold personal data; empty them."""
    Handoff.objects.filter(contact_id__in=contact_ids).update(note="", decision_note="")
