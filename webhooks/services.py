"""Writes on webhook endpoints: add, rotate the secret, disable, enable, replay.

Each writes its ledger entry in the same transaction (the secret itself never goes
on the ledger). Sending is ``webhooks.delivery``'s; these only queue.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from contacts.models import Audience
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, ledger_append, ledger_lock
from leadrecord.models import LedgerAction

from .addresses import url_target
from .models import Endpoint, EventType, Message, MessageStatus
from .outbox import subscriptions_forget

# After a rotation the old secret signs too, this long: receivers switch over meanwhile.
PREVIOUS_SECRET_VALID = timedelta(hours=24)
# 24 random bytes (192 bits) per secret, within Standard Webhooks' 24 to 64.
SECRET_BYTES = 24
URL_MAX_LENGTH = 2000
# One replay by ids names at most this many messages (a time range or "failed" for more).
REPLAY_IDS_MAX = 1000


def _subscriptions_changed() -> None:
    """This process follows the change at once (and again once it commits, in case the
    endpoints were read meanwhile); others within ``SUBSCRIPTIONS_TTL_SECONDS``."""
    subscriptions_forget()
    transaction.on_commit(subscriptions_forget)


def secret_new() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _event_types_check(event_types: Sequence[str]) -> list[str]:
    if not event_types:
        raise InvalidInput("required", "Name at least one event type.", attr="event_types")
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown:
        raise InvalidInput(
            "invalid_choice",
            f"Unknown event types: {', '.join(unknown)}.",
            attr="event_types",
        )
    return sorted(set(event_types))


def endpoint_create(
    *, url: str, event_types: Sequence[str], audience: str, actor: Actor
) -> tuple[Endpoint, str]:
    """Add an endpoint; returns it with its secret (shown this once)."""
    if len(url) > URL_MAX_LENGTH:
        raise InvalidInput("max_length", "A webhook URL is at most 2000 characters.", attr="url")
    url_target(url)
    types = _event_types_check(event_types)
    if audience not in Audience.values:
        raise InvalidInput("invalid_choice", f"Unknown audience {audience!r}.", attr="audience")
    secret = secret_new()
    with transaction.atomic():
        ledger_lock()
        endpoint = Endpoint.objects.create(
            url=url,
            event_types=types,
            audience=audience,
            secret=secret,
            created_by_id=actor.user_id,
            created_at=timezone.now(),
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.WEBHOOK_ENDPOINT_CREATE,
            subject_type="webhook_endpoint",
            subject_id=endpoint.pk,
            after={"url": url, "event_types": types, "audience": audience},
        )
        _subscriptions_changed()
    return endpoint, secret


def endpoint_rotate_secret(*, endpoint: Endpoint, actor: Actor) -> tuple[Endpoint, str]:
    """A new secret signs from now on; the old one signs too for the next 24 hours."""
    secret = secret_new()
    with transaction.atomic():
        ledger_lock()
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        now = timezone.now()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + PREVIOUS_SECRET_VALID
        endpoint.secret = secret
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
        ledger_append(
            actor=actor,
            action=LedgerAction.WEBHOOK_SECRET_ROTATE,
            subject_type="webhook_endpoint",
            subject_id=endpoint.pk,
            after={"previous_valid_until": endpoint.previous_secret_until.isoformat()},
        )
    return endpoint, secret


def endpoint_disable(*, endpoint: Endpoint, reason: str, actor: Actor | None = None) -> Endpoint:
    """Stop sending to an endpoint (its messages wait); managers see it on their home page."""
    with transaction.atomic():
        ledger_lock()
        changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_at=timezone.now(), disabled_reason=reason[:200]
        )
        endpoint.enabled = False
        if changed:
            ledger_append(
                actor=actor or Actor.system("webhooks"),
                action=LedgerAction.WEBHOOK_ENDPOINT_DISABLE,
                subject_type="webhook_endpoint",
                subject_id=endpoint.pk,
                after={"enabled": False},
                reason=reason,
            )
            _subscriptions_changed()
    return endpoint


def endpoint_enable(*, endpoint: Endpoint, actor: Actor) -> Endpoint:
    """Send again: the messages that waited go, oldest first."""
    with transaction.atomic():
        ledger_lock()
        changed = Endpoint.objects.filter(pk=endpoint.pk, enabled=False).update(
            enabled=True, disabled_at=None, disabled_reason="", failing_since=None
        )
        if not changed:
            raise Conflict("already_enabled", "This endpoint is enabled.")
        ledger_append(
            actor=actor,
            action=LedgerAction.WEBHOOK_ENDPOINT_ENABLE,
            subject_type="webhook_endpoint",
            subject_id=endpoint.pk,
            after={"enabled": True},
        )
        _subscriptions_changed()
        Message.objects.filter(endpoint=endpoint, status=MessageStatus.PENDING).update(
            next_attempt_at=timezone.now()
        )
    endpoint.refresh_from_db()
    from .tasks import deliveries_kick_on_commit

    deliveries_kick_on_commit()
    return endpoint


def messages_replay(
    *,
    endpoint: Endpoint,
    actor: Actor,
    message_ids: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    failed: bool = False,
) -> int:
    """Send chosen messages again, with their original ids; returns how many were queued.

    By ids, by a time range of when they were written, or every failed one. Messages
    still pending are on their way already and are not counted.
    """
    chosen: QuerySet[Message] = Message.objects.filter(endpoint=endpoint)
    criteria: dict[str, object] = {}
    if message_ids is not None:
        if not message_ids:
            raise InvalidInput("required", "Name at least one message.", attr="message_ids")
        if len(message_ids) > REPLAY_IDS_MAX:
            raise InvalidInput(
                "max_length", f"At most {REPLAY_IDS_MAX} messages at once.", attr="message_ids"
            )
        ids = set(message_ids)
        known = set(chosen.filter(pk__in=ids).values_list("pk", flat=True))
        if ids - known:
            raise InvalidInput(
                "not_found",
                f"No such messages of this endpoint: {', '.join(sorted(ids - known)[:5])}.",
                attr="message_ids",
            )
        chosen = chosen.filter(pk__in=ids)
        criteria["message_ids"] = sorted(ids)
    elif since is not None or until is not None:
        if since is None or until is None:
            raise InvalidInput(
                "required",
                "A time range needs both since and until.",
                attr="until" if since else "since",
            )
        if until <= since:
            raise InvalidInput("invalid", "until must be after since.", attr="until")
        chosen = chosen.filter(created_at__gte=since, created_at__lt=until)
        criteria.update(since=since.isoformat(), until=until.isoformat())
    elif failed:
        chosen = chosen.filter(status=MessageStatus.FAILED)
        criteria["failed"] = True
    else:
        raise InvalidInput(
            "required",
            "Name message_ids, a since/until range, or failed: true.",
            attr="message_ids",
        )
    with transaction.atomic():
        ledger_lock()
        now = timezone.now()
        count = chosen.exclude(status=MessageStatus.PENDING).update(
            status=MessageStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            locked_until=None,
            replays=F("replays") + 1,
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.WEBHOOK_REPLAY,
            subject_type="webhook_endpoint",
            subject_id=endpoint.pk,
            after={**criteria, "queued": count},
        )
    from .tasks import deliveries_kick_on_commit

    deliveries_kick_on_commit()
    return count
