"""Checks and notices shared by the writes on people: a write on a person needs a living
one, and the handoff app hears of the people whose touches, disclosures or consents
changed."""

from __future__ import annotations

from leadrecord.errors import Conflict
from leadrecord.ledger import Actor

from .. import signals
from ..models import Contact


def require_living(contact: Contact, attr: str | None = None) -> None:
    refusal = living_refusal(contact, attr)
    if refusal is not None:
        raise refusal


def living_refusal(contact: Contact, attr: str | None = None) -> Conflict | None:
    """What ``require_living`` raises for this contact, or None: for a service that
    raises it only once outside its transaction block."""
    if contact.erased_at is not None:
        return Conflict("contact_erased", "This contact has been erased.", attr=attr)
    if contact.merged_into_id is not None:
        survivor = Contact.objects.filter(pk=contact.merged_into_id).first()
        name = survivor.display_name if survivor is not None else "another contact"
        return Conflict("contact_merged", f"This contact was merged into {name}.", attr=attr)
    return None


def contacts_changed(contact_ids: list[int], actor: Actor) -> None:
    """Scores and qualification follow touches, disclosures and consents (the handoff app
    receives ``signals.contacts_changed``).

    Inside the caller's transaction, with the ledger lock held.
    """
    signals.contacts_changed.send(sender=Contact, contact_ids=contact_ids, actor=actor)
