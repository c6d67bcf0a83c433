"""Deals: creating one with its buying group, and whether marketing influenced it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contacts.models import (
    Contact,
    Organization,
    Team,
    Touch,
)
from leadrecord.errors import Conflict, InvalidInput
from leadrecord.ledger import Actor, LedgerDraft, ledger_append_many, ledger_lock
from leadrecord.models import LedgerAction

from ..models import (
    BuyingRole,
    Deal,
    DealContact,
    Handoff,
)
from ..selectors import deals_from_handoff
from .handoffs import sales_user_require
from .sourcing import sourcing_derive


@dataclass(frozen=True)
class Member:
    contact: Contact
    role: str


def _members_check(members: Sequence[Member]) -> None:
    seen: set[int] = set()
    for member in members:
        if member.role not in BuyingRole.values:
            raise InvalidInput(
                "invalid_choice",
                f"Role must be one of {', '.join(BuyingRole.values)}.",
                attr="contacts",
            )
        if member.contact.pk in seen:
            raise InvalidInput(
                "duplicate",
                f"{member.contact.display_name} is named twice in the buying group.",
                attr="contacts",
            )
        seen.add(member.contact.pk)
        if not member.contact.is_living:
            state = "erased" if member.contact.erased_at else "merged into another"
            raise InvalidInput(
                "contact_not_living",
                f"{member.contact.display_name} has been {state}.",
                attr="contacts",
            )


def deal_as_dict(deal: Deal) -> dict[str, Any]:
    return {
        "name": deal.name,
        "organization": deal.organization_id,
        "amount": str(deal.amount),
        "owner": deal.owner.get_username() if deal.owner else None,
        "state": deal.state,
        "source": deal.source,
        "source_reason": deal.source_reason,
        "sourcing_handoff": deal.sourcing_handoff_id,
        "external_id": deal.external_id,
    }


def deal_create(
    *,
    name: str,
    organization: Organization,
    members: Sequence[Member],
    amount: Decimal,
    actor: Actor,
    owner: User | None = None,
    external_id: str | None = None,
    source_system: str = "",
    occurred_at: datetime | None = None,
) -> tuple[Deal, bool]:
    """Open a deal with its buying group; its source is derived from the record.

    A repeated ``external_id`` answers the first deal (and whether this call created it).
    """
    if amount < 0:
        raise InvalidInput("min_value", "The amount cannot be negative.", attr="amount")
    _members_check(members)
    sales_user_require(owner, "owner")
    with transaction.atomic():
        ledger_lock()
        if external_id:
            existing = Deal.objects.filter(external_id=external_id).first()
            if existing is not None:
                return existing, False
        locked = {
            contact.pk: contact
            for contact in Contact.objects.select_for_update().filter(
                pk__in=[member.contact.pk for member in members]
            )
        }
        _members_check([Member(locked[m.contact.pk], m.role) for m in members])
        now = timezone.now()
        moment = occurred_at or now
        sourcing = sourcing_derive(list(locked), moment)
        deal = Deal.objects.create(
            name=name,
            organization=organization,
            amount=amount,
            owner=owner,
            derived_source=sourcing.source,
            derived_source_reason=sourcing.reason,
            sourcing_handoff=sourcing.handoff,
            source_system=source_system,
            external_id=external_id or None,
            created_by_id=actor.user_id,
            occurred_at=moment,
            recorded_at=now,
        )
        DealContact.objects.bulk_create(
            [
                DealContact(
                    deal=deal,
                    contact_id=member.contact.pk,
                    role=member.role,
                    other_organization=locked[member.contact.pk].organization_id != organization.pk,
                )
                for member in members
            ]
        )
        after = deal_as_dict(deal)
        after["contacts"] = [{"contact": m.contact.pk, "role": m.role} for m in members]
        drafts = [
            LedgerDraft(
                actor=actor,
                action=LedgerAction.DEAL_CREATE,
                subject_type="deal",
                subject_id=deal.pk,
                after=after,
                occurred_at=occurred_at,
            )
        ]
        drafts += [
            LedgerDraft(
                actor=actor,
                action=LedgerAction.DEAL_MEMBER_ADD,
                subject_type="deal",
                subject_id=deal.pk,
                contact_id=member.contact.pk,
                after={"deal": deal.pk, "name": deal.name, "role": member.role},
                occurred_at=occurred_at,
            )
            for member in members
        ]
        ledger_append_many(drafts)
    return deal, True


def deal_influenced(deal: Deal) -> bool:
    """Whether any marketing-team touch of a buying-group member came before a sale event."""
    last_sale = deal.sale_events.aggregate(last=Max("occurred_at"))["last"]
    if last_sale is None:
        return False
    member_ids = list(deal.members.values_list("contact_id", flat=True))
    return Touch.objects.filter(
        contact_id__in=member_ids,
        channel__team=Team.MARKETING,
        occurred_at__lt=last_sale,
    ).exists()


def deal_from_handoff_check(*, handoff: Handoff, another_confirmed: bool) -> None:
    """One deal per accepted handoff, unless the rep says this is another one.

    A second "Create a deal" for the same person is far more often a double entry than a
    second opportunity, and a double deal doubles the pipeline the reports show.
    """
    existing = list(deals_from_handoff(handoff).values_list("name", flat=True)[:3])
    if existing and not another_confirmed:
        names = ", ".join(f"“{name}”" for name in existing)
        raise Conflict(
            "deal_exists",
            f"{handoff.contact.display_name} already has a deal since this handoff ({names}). "
            "Tick the box to create another one.",
            attr="confirm_another",
        )
