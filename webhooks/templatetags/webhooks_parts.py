"""This app's part of the home page: a page below this app names the part in its template."""

from __future__ import annotations

from typing import Any

from django import template

from ..selectors import endpoints_disabled

register = template.Library()


@register.inclusion_tag("webhooks/_disabled_endpoints.html")
def webhooks_disabled() -> dict[str, Any]:
    """Disabled endpoints, so that none stops silently."""
    return {"endpoints": list(endpoints_disabled()[:20])}
