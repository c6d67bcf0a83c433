"""Reads on webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .models import Attempt, Endpoint, Message, MessageStatus


def endpoints_all() -> QuerySet[Endpoint]:
    return Endpoint.objects.annotate(
        pending=Count("messages", filter=Q(messages__status=MessageStatus.PENDING)),
        failed=Count("messages", filter=Q(messages__status=MessageStatus.FAILED)),
    ).order_by("id")


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
