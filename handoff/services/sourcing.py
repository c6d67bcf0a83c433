"""Sourcing: which marketing work a deal came from, read from the evidence at the deal's time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from contacts.models import (
    Audience,
)

from ..models import (
    DEFAULT_SOURCING_WINDOW_DAYS,
    DealSource,
    Handoff,
    HandoffStatus,
)
from ..selectors import ruleset_active


@dataclass(frozen=True)
class Sourcing:
    source: str
    reason: str
    handoff: Handoff | None


def _day_count(delta: timedelta) -> str:
    days = delta.days
    return "the same day" if days == 0 else f"{days} day{'s' if days != 1 else ''}"


# The say-so audiences of handoffs marketing knows of: only those are its work.
# A handoff opened on a stage the person told sales alone is sales' own (and a
# deal's reason naming it would tell marketing of it).
MARKETING_KNOWS = (Audience.ALL.value, Audience.MARKETING.value)


def sourcing_derive(contact_ids: Sequence[int], deal_time: datetime) -> Sourcing:
    """Marketing-sourced when an accepted handoff of a buying-group member, made on a say-so
    marketing may see, preceded the deal within the sourcing window; otherwise
    sales-sourced. The reason says which evidence."""
    ruleset = ruleset_active()
    window_days = ruleset.sourcing_window_days if ruleset else DEFAULT_SOURCING_WINDOW_DAYS
    rules = f"sourcing window {window_days} days" + (
        f", ruleset v{ruleset.version}" if ruleset else ", no active ruleset"
    )
    accepted = Handoff.objects.filter(
        contact_id__in=list(contact_ids),
        say_so_audience__in=MARKETING_KNOWS,
        status=HandoffStatus.ACCEPTED,
        occurred_at__lte=deal_time,
        decided_at__lte=deal_time,
    ).select_related("decided_by")
    in_window = (
        accepted.filter(occurred_at__gte=deal_time - timedelta(days=window_days))
        .order_by("-occurred_at", "-pk")
        .first()
    )
    if in_window is not None:
        decided_by = in_window.decided_by.get_username() if in_window.decided_by else "sales"
        return Sourcing(
            DealSource.MARKETING,
            f"Marketing-sourced: a buying-group member's handoff was made "
            f"{_day_count(deal_time - in_window.occurred_at)} before this deal and "
            f"accepted by {decided_by} ({rules}).",
            in_window,
        )
    older = accepted.order_by("-occurred_at", "-pk").first()
    members = len(set(contact_ids))
    group = f"{members} buying-group member{'s' if members != 1 else ''}"
    if older is not None:
        return Sourcing(
            DealSource.SALES,
            f"Sales-sourced: the latest accepted handoff for the {group} was "
            f"{_day_count(deal_time - older.occurred_at)} before this deal, outside the "
            f"window ({rules}).",
            None,
        )
    return Sourcing(
        DealSource.SALES,
        f"Sales-sourced: no accepted handoff for the {group} before this deal ({rules}).",
        None,
    )
