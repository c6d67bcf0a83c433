"""What this app does when people change in the contacts app below it.

Connected to ``contacts.signals`` when the app is ready; each receiver runs
inside the contacts service's transaction, with the ledger lock held.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from contacts import signals
from contacts.models import Contact
from leadrecord.ledger import Actor

from . import selectors, services
from .models import BuyerForm


@receiver(signals.contact_merging, dispatch_uid="buyers.contact_references_move")
def contact_references_move(
    sender: Any, *, merged: Contact, kept: Contact, actor: Actor, **_: Any
) -> dict[str, int]:
    return services.contact_references_move(merged=merged, kept=kept)


@receiver(signals.contacts_erasing, dispatch_uid="buyers.contact_personal_data_erase")
def contact_personal_data_erase(sender: Any, *, contact_ids: list[int], **_: Any) -> None:
    services.contact_personal_data_erase(contact_ids)


@receiver(post_save, sender=BuyerForm, dispatch_uid="buyers.form_published_forget_saved")
@receiver(post_delete, sender=BuyerForm, dispatch_uid="buyers.form_published_forget_deleted")
def form_published_forget(sender: Any, *, instance: BuyerForm, **_: Any) -> None:
    """A form created, published or unpublished: this process reads it again, now and
    once the change is committed (a page read between the two saw the old form)."""
    selectors.form_published_forget(instance.slug)
    transaction.on_commit(lambda: selectors.form_published_forget(instance.slug))
