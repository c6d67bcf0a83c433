"""Read-side queries for rulesets, handoffs, deals and targets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from contacts.models import Organization
from contacts.selectors import UserLike
from leadrecord.roles import Role, user_has_role

from .models import (
    ContributionTarget,
    Deal,
    DealContact,
    Handoff,
    HandoffStatus,
    Ruleset,
    RulesetStatus,
    SaleEvent,
)
from .scoring import ruleset_active

__all__ = ["ruleset_active"]

# A pending handoff is "due soon" in its last quarter of the SLA (at most a day).
DUE_SOON_MAX = timedelta(hours=24)


def rulesets_all() -> QuerySet[Ruleset]:
    return Ruleset.objects.order_by("-version")


@dataclass(frozen=True)
class RuleChange:
    field: str
    active: Any
    draft: Any


def ruleset_diff(draft: Ruleset, active: Ruleset | None) -> list[RuleChange]:
    """What activating ``draft`` would change, field by field and point rule by point rule."""
    changes: list[RuleChange] = []
    for field in (
        "mql_threshold",
        "sla_hours",
        "sourcing_window_days",
        "lookback_days",
        "auto_handoff",
    ):
        old = getattr(active, field) if active else None
        new = getattr(draft, field)
        if old != new:
            changes.append(RuleChange(field, old, new))
    old_points: dict[str, int] = dict(active.points) if active else {}
    new_points: dict[str, int] = dict(draft.points)
    for key in sorted(set(old_points) | set(new_points)):
        if old_points.get(key) != new_points.get(key):
            changes.append(RuleChange(f"points {key}", old_points.get(key), new_points.get(key)))
    return changes


def handoffs_all() -> QuerySet[Handoff]:
    return Handoff.objects.select_related(
        "contact", "contact__organization", "ruleset", "owner", "assigned_to", "decided_by"
    )


def handoff_queue(user: UserLike | None) -> QuerySet[Handoff]:
    """Pending handoffs a rep may take (unassigned or theirs; a manager sees all), oldest due
    first."""
    queryset = handoffs_all().filter(status=HandoffStatus.PENDING, contact__erased_at__isnull=True)
    if user is not None and not user_has_role(user, Role.MANAGER):
        queryset = queryset.filter(Q(assigned_to__isnull=True) | Q(assigned_to=user.pk))
    return queryset.order_by("due_at", "id")


def handoffs_returned() -> QuerySet[Handoff]:
    """Rejected and expired handoffs: back with marketing, most recent first."""
    return (
        handoffs_all()
        .filter(status__in=[HandoffStatus.REJECTED, HandoffStatus.EXPIRED])
        .order_by("-decided_at", "-id")
    )


def handoffs_of_contact(contact_id: int) -> QuerySet[Handoff]:
    return handoffs_all().filter(contact_id=contact_id).order_by("-occurred_at", "-id")


def sla_state(handoff: Handoff, *, now: datetime | None = None) -> str:
    """``on_time``, ``due_soon`` or ``overdue`` for a pending handoff; else its status."""
    if handoff.status != HandoffStatus.PENDING:
        return str(handoff.status)
    now = now or timezone.now()
    if now >= handoff.due_at:
        return "overdue"
    window = min((handoff.due_at - handoff.occurred_at) / 4, DUE_SOON_MAX)
    return "due_soon" if handoff.due_at - now <= window else "on_time"


def deals_all() -> QuerySet[Deal]:
    return Deal.objects.select_related(
        "organization", "owner", "sourcing_handoff"
    ).prefetch_related(
        Prefetch(
            "members",
            queryset=DealContact.objects.select_related("contact").order_by("id"),
        ),
        Prefetch("sale_events", queryset=SaleEvent.objects.order_by("occurred_at", "id")),
    )


def targets_all() -> QuerySet[ContributionTarget]:
    return ContributionTarget.objects.order_by("-period")


def ruleset_drafts() -> QuerySet[Ruleset]:
    return Ruleset.objects.filter(status=RulesetStatus.DRAFT).order_by("-version")


def handoffs_accepted_by(user: UserLike) -> QuerySet[Handoff]:
    """Handoffs this user accepted and owns, most recent first: where their deals start."""
    return (
        handoffs_all()
        .filter(status=HandoffStatus.ACCEPTED, owner_id=user.pk, contact__erased_at__isnull=True)
        .order_by("-decided_at", "-id")
    )


def sales_users() -> QuerySet[User]:
    """Who may own a deal or a handed-off person: active sales reps and managers."""
    return (
        User.objects.filter(groups__name__in=[Role.SALES_REP, Role.MANAGER], is_active=True)
        .distinct()
        .order_by("username")
    )


def sales_reps() -> QuerySet[User]:
    """Active sales reps: whom marketing may hand a person to by name."""
    return (
        User.objects.filter(groups__name=Role.SALES_REP, is_active=True)
        .distinct()
        .order_by("username")
    )


# Enough to tell "one" from "several" when an organization is named on a page.
ORGANIZATION_MATCHES_MAX = 2


def organizations_named(text: str) -> list[Organization]:
    """Organizations a person means by ``text``: the one with this domain, else those with
    this name (any case). More than one means the name is ambiguous."""
    text = text.strip()
    by_domain = (
        Organization.objects.filter(domain=text.lower().rstrip(".")).first() if text else None
    )
    if by_domain is not None:
        return [by_domain]
    return list(Organization.objects.filter(name__iexact=text)[:ORGANIZATION_MATCHES_MAX])
