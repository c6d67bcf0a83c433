"""The handoff app's parts of other apps' pages: a page below this app (the contact's)
names the part in its template, and this app fills it in, so no view below imports it."""

from __future__ import annotations

from typing import Any

from django import template

from contacts.models import Contact
from leadrecord.ledger import Actor

from ..selectors import handoffs_of_contact
from ..selectors import rule_label as rule_label_text
from ..services import handoff_readiness

register = template.Library()


@register.inclusion_tag("handoff/_contact_handoffs.html", takes_context=True)
def contact_handoffs(context: template.Context, contact_id: int) -> dict[str, Any]:
    """The person's handoffs that the reader may know of, newest first."""
    return {"handoffs": handoffs_of_contact(context["request"].user, contact_id)}


@register.inclusion_tag("handoff/_contact_handoff_action.html", takes_context=True)
def contact_handoff_action(context: template.Context, contact: Contact) -> dict[str, Any]:
    """ "Hand off to sales" when the reader may hand this person off now, else why not."""
    readiness = handoff_readiness(contact=contact, actor=Actor.of(context["request"].user))
    return {"contact": contact, "readiness": readiness}


@register.filter
def rule_label(key: str) -> str:
    """``{{ key|rule_label }}``: a point rule's key (``channel:webinar``) in words."""
    return rule_label_text(str(key))
