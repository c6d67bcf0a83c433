"""Sale events on a deal (won, lost, expansion, churn) and overriding a deal's source."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from leadrecord.dates import moment_text
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, ledger_append, ledger_lock
from leadrecord.models import LedgerAction

from ..models import (
    Deal,
    DealSource,
    DealState,
    SaleEvent,
    SaleKind,
)
from .deals import deal_influenced

# Which sale events a deal in each state takes, and the state after them.
_TRANSITIONS: dict[tuple[str, str], str] = {
    (DealState.OPEN, SaleKind.WON): DealState.WON,
    (DealState.OPEN, SaleKind.LOST): DealState.LOST,
    (DealState.WON, SaleKind.EXPANSION): DealState.WON,
    (DealState.WON, SaleKind.RENEWAL): DealState.WON,
    (DealState.WON, SaleKind.CHURN): DealState.CHURNED,
}


def _transition_refused(deal: Deal, kind: str) -> Conflict:
    if kind == SaleKind.WON and deal.state in (DealState.WON, DealState.CHURNED):
        return Conflict("already_won", "This deal has already been won.", attr="kind")
    if deal.state == DealState.LOST:
        return Conflict("deal_lost", "This deal was lost; nothing follows.", attr="kind")
    if deal.state == DealState.CHURNED:
        return Conflict("deal_churned", "This customer churned.", attr="kind")
    if deal.state == DealState.WON and kind == SaleKind.LOST:
        return Conflict(
            "already_won", "A won deal cannot be lost; record churn instead.", attr="kind"
        )
    return Conflict("not_won", f"A {kind} follows a won deal; this one is still open.", attr="kind")


def sale_event_record(
    *,
    deal: Deal,
    kind: str,
    amount: Decimal | None,
    actor: Actor,
    occurred_at: datetime | None = None,
    external_id: str | None = None,
    source_system: str = "",
) -> tuple[SaleEvent, bool]:
    """Record a sale event; the deal's state follows. A repeated external id answers the first."""
    if kind not in SaleKind.values:
        raise InvalidInput(
            "invalid_choice",
            f"Kind must be one of {', '.join(SaleKind.values)}.",
            attr="kind",
        )
    if amount is None:
        if kind != SaleKind.LOST:
            raise InvalidInput("required", f"A {kind} needs an amount.", attr="amount")
        amount = Decimal("0")
    if amount < 0:
        raise InvalidInput("min_value", "The amount cannot be negative.", attr="amount")
    with transaction.atomic():
        ledger_lock()
        if external_id:
            existing = SaleEvent.objects.filter(
                source_system=source_system, external_id=external_id
            ).first()
            if existing is not None:
                return existing, False
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
        now = timezone.now()
        moment = occurred_at or now
        if moment < deal.occurred_at:
            raise InvalidInput(
                "before_deal",
                f"This deal was created on {moment_text(deal.occurred_at)}; a sale event cannot "
                "come before it.",
                attr="occurred_at",
            )
        new_state = _TRANSITIONS.get((deal.state, kind))
        if new_state is None:
            raise _transition_refused(deal, kind)
        if kind in (SaleKind.EXPANSION, SaleKind.RENEWAL, SaleKind.CHURN):
            won_at = deal.sale_events.filter(kind=SaleKind.WON).values_list(
                "occurred_at", flat=True
            )[0]
            if moment < won_at:
                raise InvalidInput(
                    "before_won",
                    f"The deal was won on {moment_text(won_at)}; a {kind} cannot come before.",
                    attr="occurred_at",
                )
        event = SaleEvent.objects.create(
            deal=deal,
            kind=kind,
            amount=amount,
            occurred_at=moment,
            recorded_at=now,
            source_system=source_system,
            external_id=external_id or None,
            recorded_by_id=actor.user_id,
        )
        before_state = deal.state
        deal.state = new_state
        deal.influenced = deal_influenced(deal)
        deal.save(update_fields=["state", "influenced"])
        ledger_append(
            actor=actor,
            action=LedgerAction.SALE_RECORD,
            subject_type="deal",
            subject_id=deal.pk,
            before={"state": before_state},
            after={
                "sale_event": event.pk,
                "kind": kind,
                "amount": str(amount),
                "state": new_state,
                "external_id": event.external_id,
            },
            occurred_at=occurred_at,
        )
    return event, True


def deal_source_override(*, deal: Deal, source: str, reason: str, actor: Actor) -> Deal:
    """Set a deal's source by hand. Needs a reason; the derived source stays beside it."""
    if source not in DealSource.values:
        raise InvalidInput(
            "invalid_choice",
            f"Source must be one of {', '.join(DealSource.values)}.",
            attr="source",
        )
    if not reason.strip():
        raise InvalidInput("required", "An override needs a reason.", attr="reason")
    with transaction.atomic():
        ledger_lock()
        deal = Deal.objects.select_for_update().get(pk=deal.pk)
        before = {"source": deal.source, "override": deal.source_override or None}
        deal.source_override = source
        deal.override_reason = reason.strip()
        deal.save(update_fields=["source_override", "override_reason"])
        ledger_append(
            actor=actor,
            action=LedgerAction.DEAL_OVERRIDE_SOURCE,
            subject_type="deal",
            subject_id=deal.pk,
            before=before,
            after={"source": source, "derived_source": deal.derived_source},
            reason=deal.override_reason,
        )
    return deal
