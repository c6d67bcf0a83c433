"""What this app does when people change in the contacts app below it (contacts.signals)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from contacts import signals

from .models import Message


@receiver(signals.contacts_erasing, dispatch_uid="webhooks.messages_personal_erase")
def messages_personal_erase(sender: Any, *, contact_ids: list[int], **_: Any) -> None:
    """Erasure empties the personal values of every message about the person, sent or
    pending: a pending one then goes out with ids only."""
    Message.objects.filter(contact_id__in=contact_ids, personal__isnull=False).update(personal=None)
