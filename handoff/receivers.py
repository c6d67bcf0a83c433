"""What this app does when people change in the contacts app below it.

Connected to ``contacts.signals`` (the one way a lower app learns of a higher
one's records, ``docs/layers.md``) when the app is ready. Each receiver runs
inside the contacts service's transaction, with the ledger lock held.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from contacts import signals
from contacts.models import Contact
from leadrecord.ledger import Actor

from . import scoring, selectors, services
from .models import Ruleset


@receiver(signals.contacts_changed, dispatch_uid="handoff.contacts_rescore")
def contacts_rescore(sender: Any, *, contact_ids: list[int], actor: Actor, **_: Any) -> None:
    """Scores and qualification follow touches, disclosures and consents."""
    scoring.contacts_rescore(contact_ids, actor=actor)


@receiver(signals.journey_stages_recorded, dispatch_uid="handoff.handoffs_open_on_say_so")
def handoffs_open_on_say_so(sender: Any, *, disclosure_ids: list[int], **_: Any) -> None:
    services.handoffs_open_on_say_so(disclosure_ids)


@receiver(signals.contact_merging, dispatch_uid="handoff.contact_references_move")
def contact_references_move(
    sender: Any, *, merged: Contact, kept: Contact, actor: Actor, **_: Any
) -> dict[str, int]:
    return services.contact_references_move(merged=merged, kept=kept, actor=actor)


@receiver(signals.contacts_erasing, dispatch_uid="handoff.contact_personal_data_erase")
def contact_personal_data_erase(sender: Any, *, contact_ids: list[int], **_: Any) -> None:
    services.contact_personal_data_erase(contact_ids)


@receiver(signals.timeline_hidden_subjects, dispatch_uid="handoff.handoff_subjects_hidden")
def handoff_subjects_hidden(
    sender: Any, *, user: Any, contact_ids: list[int], **_: Any
) -> list[tuple[str, int]]:
    """A reader's timeline leaves out the handoffs it may not know of."""
    return selectors.handoff_subjects_hidden_from(user, contact_ids)


@receiver(post_save, sender=Ruleset, dispatch_uid="handoff.ruleset_active_forget_saved")
@receiver(post_delete, sender=Ruleset, dispatch_uid="handoff.ruleset_active_forget_deleted")
def ruleset_active_forget(sender: Any, **_: Any) -> None:
    """A ruleset written in this transaction (by its services, or a test's factory):
    the active one this transaction remembered may be another now."""
    selectors.ruleset_active_forget()
