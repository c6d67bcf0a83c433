"""Channels, campaigns and touches: created, updated and recorded, with the touch's ledger
payload."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from leadrecord.bulk import row_insert_under_parent
from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor, ledger_append, ledger_lock, ledger_lock_or_recheck
from leadrecord.models import LedgerAction

from .. import rules
from ..models import (
    TOUCH_COLUMNS,
    Campaign,
    Channel,
    Contact,
    Team,
    Touch,
    TouchKind,
)
from ..selectors import channels_forget
from .checks import contacts_changed, require_living


def channel_create(*, key: str, team: str, actor: Actor) -> Channel:
    """A new channel (managers); keys are unique."""
    if team not in Team.values:
        raise InvalidInput("invalid_choice", f"Unknown team {team!r}.", attr="team")
    with transaction.atomic():
        if Channel.objects.filter(key=key).exists():
            raise InvalidInput("unique", f"Channel {key!r} exists.", attr="key")
        channel = Channel.objects.create(key=key, team=team)
        ledger_append(
            actor=actor,
            action=LedgerAction.CHANNEL_CREATE,
            subject_type="channel",
            subject_id=channel.pk,
            after={"key": key, "team": team},
        )
    return channel


def channel_update(*, channel: Channel, team: str, active: bool, actor: Actor) -> Channel:
    """Change a channel's team or retire it; touches already recorded keep their channel."""
    if team not in Team.values:
        raise InvalidInput("invalid_choice", f"Unknown team {team!r}.", attr="team")
    with transaction.atomic():
        channel = Channel.objects.select_for_update().get(pk=channel.pk)
        before = {"team": channel.team, "active": channel.active}
        channel.team, channel.active = team, active
        channel.save(update_fields=["team", "active"])
        channels_forget()
        ledger_append(
            actor=actor,
            action=LedgerAction.CHANNEL_UPDATE,
            subject_type="channel",
            subject_id=channel.pk,
            before=before,
            after={"team": team, "active": active},
        )
    return channel


def campaign_create(
    *,
    name: str,
    channel: Channel,
    utm_source: str = "",
    utm_medium: str = "",
    utm_campaign: str = "",
    cost: Decimal = Decimal("0"),
    actor: Actor,
    occurred_at: datetime | None = None,
) -> Campaign:
    """A campaign on a channel, with its UTM tags and cost in the reporting currency."""
    name = name.strip()
    if cost < 0:
        raise InvalidInput("min_value", "A cost cannot be negative.", attr="cost")
    with transaction.atomic():
        if Campaign.objects.filter(name__iexact=name).exists():
            raise InvalidInput("unique", f"A campaign named {name!r} exists.", attr="name")
        campaign = Campaign.objects.create(
            name=name,
            channel=channel,
            utm_source=utm_source.strip(),
            utm_medium=utm_medium.strip(),
            utm_campaign=utm_campaign.strip(),
            cost=cost,
            created_at=occurred_at or timezone.now(),
        )
        ledger_append(
            actor=actor,
            action=LedgerAction.CAMPAIGN_CREATE,
            subject_type="campaign",
            subject_id=campaign.pk,
            after={
                "name": campaign.name,
                "channel": channel.key,
                "utm_source": campaign.utm_source,
                "utm_medium": campaign.utm_medium,
                "utm_campaign": campaign.utm_campaign,
                "cost": str(campaign.cost),
            },
            occurred_at=occurred_at,
        )
    return campaign


def touch_ledger_payload(
    *,
    channel_key: str,
    campaign_id: int | None,
    kind: str,
    source_system: str,
    external_id: str | None,
) -> dict[str, Any]:
    """``touch.record``'s payload, by every path."""
    return {
        "channel": channel_key,
        "campaign": campaign_id,
        "kind": kind,
        "source_system": source_system,
        "external_id": external_id,
    }


def touch_record(
    *,
    contact: Contact,
    channel: Channel,
    campaign: Campaign | None = None,
    kind: str = TouchKind.OTHER,
    occurred_at: datetime | None = None,
    source_system: str = "",
    external_id: str | None = None,
    actor: Actor,
) -> tuple[Touch, bool]:
    """Record a touch; a repeated (source_system, external_id) answers the first one.

    Returns the touch and whether it was created.
    """
    rules.touch_check(channel=channel, campaign=campaign, kind=kind)
    now = timezone.now()
    touch = Touch(
        contact=contact,
        channel=channel,
        campaign=campaign,
        kind=kind,
        occurred_at=occurred_at or now,
        recorded_at=now,
        source_system=source_system,
        external_id=external_id or None,
        recorded_by_id=actor.user_id,
    )
    existing: Touch | None = None
    # No savepoint of its own: a form sent records its touch inside its own
    # transaction, where a savepoint was two more round trips. So nothing is
    # raised inside this block but what undoes the caller's whole transaction
    # anyway; a refusal is raised after it, having written nothing.
    with transaction.atomic(savepoint=False):
        # The ledger lock first: the duplicate check and the insert are then
        # one step for every writer, however many retry at once. A touch with no
        # external id has nothing to duplicate: a form sent by a new person defers
        # the lock (leadrecord.ledger.ledger_deferred), and its flush rechecks that
        # the person was neither erased nor merged meanwhile.
        if external_id:
            ledger_lock()
        else:
            ledger_lock_or_recheck((LedgerAction.CONTACT_ERASE, LedgerAction.CONTACT_MERGE))
        touch.pk = row_insert_under_parent(
            touch,
            TOUCH_COLUMNS,
            parent=Contact,
            parent_id=touch.contact_id,
            parent_null=("erased_at", "merged_into"),
        )
        if touch.pk is None:
            # Nothing inserted: the external id is known (answer the first
            # touch), or the contact is no longer living.
            if external_id:
                existing = Touch.objects.filter(
                    source_system=source_system, external_id=external_id
                ).first()
        else:
            ledger_append(
                actor=actor,
                action=LedgerAction.TOUCH_RECORD,
                subject_type="touch",
                subject_id=touch.pk,
                contact_id=contact.pk,
                after=touch_ledger_payload(
                    channel_key=channel.key,
                    campaign_id=touch.campaign_id,
                    kind=touch.kind,
                    source_system=touch.source_system,
                    external_id=touch.external_id,
                ),
                occurred_at=occurred_at,
            )
            contacts_changed([contact.pk], actor)
    if touch.pk is None:
        if existing is not None:
            return existing, False
        # Erasure and merging are for good: not living then is not living now.
        require_living(Contact.objects.get(pk=contact.pk), attr="contact")
        raise RuntimeError(f"touch for living contact {contact.pk} not inserted")
    touch._state.adding = False
    return touch, True
