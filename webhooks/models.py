"""Webhook endpoints, their outbox of messages, and the log of each delivery attempt.

A ``Message`` is one event for one endpoint, written in the same transaction as the
ledger entry it comes from (``webhooks.outbox``), so a change that rolls back sends
nothing. Delivery (``webhooks.delivery``) sends it, signed per Standard Webhooks, until
the receiver answers 2xx or the retry schedule runs out; each try is an ``Attempt``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from contacts.models import Audience


class EventType(models.TextChoices):
    CONTACT_CREATED = "contact.created", "Contact created"
    CONTACT_MERGED = "contact.merged", "Contacts merged"
    CONTACT_ERASED = "contact.erased", "Contact erased"
    CONSENT_GRANTED = "consent.granted", "Consent granted"
    CONSENT_WITHDRAWN = "consent.withdrawn", "Consent withdrawn"
    DISCLOSURE_RECORDED = "disclosure.recorded", "Disclosure recorded"
    DISCLOSURE_WITHDRAWN = "disclosure.withdrawn", "Disclosure withdrawn"
    TOUCH_RECORDED = "touch.recorded", "Touch recorded"
    HANDOFF_CREATED = "handoff.created", "Handoff created"
    HANDOFF_ACCEPTED = "handoff.accepted", "Handoff accepted"
    HANDOFF_REJECTED = "handoff.rejected", "Handoff rejected"
    HANDOFF_EXPIRED = "handoff.expired", "Handoff expired"
    DEAL_CREATED = "deal.created", "Deal created"
    SALE_RECORDED = "sale.recorded", "Sale event recorded"
    DEAL_SOURCE_OVERRIDDEN = "deal.source_overridden", "Deal's source overridden"
    RULESET_ACTIVATED = "ruleset.activated", "Ruleset activated"
    ATTRIBUTION_RUN_COMPLETED = "attribution.run_completed", "Attribution run completed"


class Endpoint(models.Model):
    """A receiving system: where to send, which events, and the audience it acts for."""

    url = models.URLField(max_length=2000)
    event_types = models.JSONField(help_text="The EventType values it wants.")
    audience = models.CharField(max_length=16, choices=Audience.choices)
    # Signing needs the secret itself (HMAC), so it is kept as is, never shown again.
    secret = models.CharField(max_length=80)
    previous_secret = models.CharField(max_length=80, blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    # The first failure since the last success; five days of it disable the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    # The last sequence number given to one of its messages (assigned under the ledger lock).
    last_sequence = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(audience__in=Audience.values), name="webhook_endpoint_audience"
            )
        ]

    def __str__(self) -> str:
        return f"endpoint {self.pk} ({self.url})"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Message(models.Model):
    """One event for one endpoint: the outbox row, kept as the delivery log's subject."""

    id = models.CharField(primary_key=True, max_length=40)
    # Not indexed alone: the (endpoint, sequence) constraint's index serves it, and every
    # index costs each outbox write. Nor checked by a foreign key in the database: its
    # check ran once per message at each commit, the largest part of a bulk write's
    # outbox cost after the insert itself (bench/webhooks.py), and it guards nothing
    # here: messages are written only by webhooks.outbox, whose statements insert only
    # after moving the endpoint row's counter, and endpoints are never deleted.
    endpoint = models.ForeignKey(
        Endpoint,
        on_delete=models.PROTECT,
        related_name="messages",
        db_index=False,
        db_constraint=False,
    )
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    ledger_seq = models.PositiveBigIntegerField()
    sequence = models.PositiveBigIntegerField(help_text="Per endpoint, from 1, without gaps.")
    # The person it is about, if any: a person's messages go out in sequence order.
    contact_id = models.BigIntegerField(null=True, blank=True)
    timestamp = models.DateTimeField(help_text="When the change was recorded.")
    # Ids and choices only; the few personal values (a disclosure's) are in ``personal``,
    # which erasure empties. Empty for the event types built from their ledger entry when
    # sent (``webhooks.events.BUILT_FROM_ENTRY``): the entry never changes.
    data = models.JSONField(null=True, blank=True)
    personal = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A delivery run holds the message until then; a run that died lets go of it so.
    locked_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    replays = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["endpoint", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "sequence"], name="webhook_message_endpoint_sequence"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=MessageStatus.values), name="webhook_message_status"
            ),
        ]
        # Only what delivery looks up, and only over pending messages: the delivered
        # ones (nearly all) leave them. A replay's time range reads an endpoint's
        # messages through the (endpoint, sequence) index.
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_message_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(
                fields=["endpoint", "contact_id", "sequence"],
                name="webhook_message_person",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type} #{self.sequence}"


class MessageRange(models.Model):
    """An endpoint's messages of one ledger append, not written out yet: one row where
    the messages would be a row each (bulk ingest writes thousands per batch).

    Written by ``webhooks.outbox`` in the writer's transaction and under the ledger lock,
    for event types built from their entry alone (``webhooks.events.BUILT_FROM_ENTRY``),
    which need nothing read at the time: a rolled-back change leaves no range. It holds
    the endpoint's sequence numbers ``first_sequence`` onwards, ``count`` of them, taken
    from the endpoint's counter then, so numbers follow ledger order whenever the messages
    are written. Delivery writes them out first (``messages_expand``): the range's row
    goes in the same statement that inserts its messages, so a range becomes its messages
    once, or not at all.
    """

    endpoint = models.ForeignKey(
        Endpoint,
        on_delete=models.PROTECT,
        related_name="ranges",
        db_index=False,
        db_constraint=False,
    )
    # The ledger entries of the append: those of them whose action ``events`` names.
    first_seq = models.PositiveBigIntegerField()
    last_seq = models.PositiveBigIntegerField()
    events = models.JSONField(help_text="The event type of each ledger action wanted.")
    first_sequence = models.PositiveBigIntegerField()
    count = models.PositiveIntegerField()
    created_at = models.DateTimeField(help_text="When the change was written.")

    class Meta:
        ordering = ["endpoint", "first_sequence"]
        constraints = [
            # Also what delivery asks: is an earlier message of this endpoint unwritten?
            models.UniqueConstraint(
                fields=["endpoint", "first_sequence"], name="webhook_range_endpoint_sequence"
            ),
        ]

    def __str__(self) -> str:
        return f"endpoint {self.endpoint_id} #{self.first_sequence}+{self.count}"


class AttemptStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Attempt(models.Model):
    """One try at delivering a message: the delivery log."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_set")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=AttemptStatus.choices)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.CharField(max_length=300, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    # Sent again on request (replay), with the message's original id.
    replay = models.BooleanField(default=False)

    class Meta:
        ordering = ["-attempted_at", "-id"]
        indexes = [models.Index(fields=["endpoint", "-attempted_at"], name="webhook_attempt_log")]

    def __str__(self) -> str:
        return f"{self.message_id} at {self.attempted_at.isoformat()}: {self.status}"
