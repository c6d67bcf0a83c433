"""The handoff app's parts of other apps' pages: a page below this app (the contact's)
names the part in its template, and this app fills it in, so no view below imports it."""

from __future__ import annotations

from typing import Any

from django import template

from ..selectors import handoffs_of_contact

register = template.Library()


@register.inclusion_tag("handoff/_contact_handoffs.html", takes_context=True)
def contact_handoffs(context: template.Context, contact_id: int) -> dict[str, Any]:
    """The person's handoffs that the reader may know of, newest first."""
    return {"handoffs": handoffs_of_contact(context["request"].user, contact_id)}
