"""Reads on webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .models import Attempt, Endpoint, Message, MessageRange, MessageStatus


def endpoints_all() -> QuerySet[Endpoint]:
    """Each with its pending messages (those of ranges not written out yet among them) and
    its failed ones."""
    unwritten = (
        MessageRange.objects.filter(endpoint_id=OuterRef("pk"))
        .order_by()
        .values("endpoint_id")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return Endpoint.objects.annotate(
        pending=Count("messages", filter=Q(messages__status=MessageStatus.PENDING))
        + Coalesce(Subquery(unwritten, output_field=IntegerField()), Value(0)),
        failed=Count("messages", filter=Q(messages__status=MessageStatus.FAILED)),
    ).order_by("id")


def messages_pending_count() -> int:
    """Messages still to send, of every endpoint: those pending and those of ranges not
    written out yet."""
    pending = Message.objects.filter(status=MessageStatus.PENDING).count()
    unwritten = MessageRange.objects.aggregate(total=Sum("count"))["total"] or 0
    return pending + unwritten


def endpoints_disabled() -> QuerySet[Endpoint]:
    """What managers are told of on their home page."""
    return Endpoint.objects.filter(enabled=False).order_by("-disabled_at")


def endpoint_attempts(endpoint: Endpoint, *, status: str | None = None) -> QuerySet[Attempt]:
    """The delivery log, newest first (``status``: succeeded or failed)."""
    attempts = Attempt.objects.filter(endpoint=endpoint).select_related("message")
    if status:
        attempts = attempts.filter(status=status)
    return attempts.order_by("-attempted_at", "-id")


def endpoint_dead_letters(endpoint: Endpoint) -> QuerySet[Message]:
    """Messages whose every try failed: replay sends them again."""
    return Message.objects.filter(endpoint=endpoint, status=MessageStatus.FAILED).order_by(
        "sequence"
    )
