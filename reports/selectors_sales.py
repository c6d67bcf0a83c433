"""What the marketing and sales dashboards show of the handoff app's records: the handoffs
sales returned in a range, by reason; the queue waiting for sales, by SLA state; and a
rep's own deals in a range, summed by state and source.

Each reads through ``handoff.selectors``, so a reader sees only the handoffs and deals the
handoff pages would show them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Count, Q, Sum

from contacts.selectors import UserLike
from handoff import selectors as handoff_selectors
from handoff.models import Deal, DealSource, DealState, Handoff, HandoffStatus, RejectReason

from .periods import range_moments

REASON_LABELS = dict(RejectReason.choices)


@dataclass(frozen=True)
class Returned:
    # (reason, handoffs), most handoffs first, then by reason.
    reasons: list[tuple[str, int]]
    recent: list[Handoff]

    @property
    def total(self) -> int:
        return sum(number for _, number in self.reasons)


def returned_in(user: UserLike, start: date, end: date, *, recent: int) -> Returned:
    """The handoffs returned to marketing (rejected or expired) with their decision in the
    range, by reason (an expiry is "SLA expired"), and the ``recent`` latest of them."""
    low, high = range_moments(start, end)
    returned = handoff_selectors.handoffs_returned(user).filter(
        decided_at__gte=low, decided_at__lt=high
    )
    reasons = Counter(
        REASON_LABELS.get(reason, "") or ("SLA expired" if status == HandoffStatus.EXPIRED else "—")
        for status, reason in returned.values_list("status", "reason")
    )
    return Returned(
        reasons=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        recent=list(returned[:recent]),
    )


@dataclass(frozen=True)
class Queue:
    waiting: list[Handoff]  # the first ones, oldest due first
    states: Counter[str]  # every waiting handoff's SLA state

    @property
    def total(self) -> int:
        return sum(self.states.values())


def queue_summary(user: UserLike, *, shown: int) -> Queue:
    """The handoffs waiting for ``user`` to answer: the first ``shown`` and every one's SLA
    state."""
    queue = handoff_selectors.handoff_queue(user)
    waiting = list(queue[:shown])
    return Queue(
        waiting=waiting,
        states=Counter(handoff_selectors.sla_state(handoff) for handoff in queue),
    )


@dataclass(frozen=True)
class StateSums:
    state: str
    marketing: Decimal | int
    sales: Decimal | int
    deals: int


@dataclass(frozen=True)
class OwnDeals:
    # The states that have deals, in DealState's order, with their sums.
    states: list[StateSums]
    # Newest first: every deal, or the first ones when a limit was given.
    deals: list[Deal]
    total: int


def deals_owned(user: UserLike, start: date, end: date, *, limit: int | None) -> OwnDeals:
    """The deals ``user`` owns created in the range: their amounts by state and source (the
    override first, as everywhere) and the deals themselves, newest first."""
    low, high = range_moments(start, end)
    # The list needs neither buying groups nor sale events: no prefetch.
    deals = (
        handoff_selectors.deals_all()
        .prefetch_related(None)
        .filter(owner_id=user.pk, occurred_at__gte=low, occurred_at__lt=high)
    )
    marketing = Q(source_override=DealSource.MARKETING) | Q(
        source_override="", derived_source=DealSource.MARKETING
    )
    sums = {
        row["state"]: row
        for row in deals.values("state")
        .annotate(
            marketing=Sum("amount", filter=marketing),
            sales=Sum("amount", filter=~marketing),
            deals=Count("id"),
        )
        .order_by()
    }
    listed = deals.order_by("-occurred_at", "-id").select_related("organization")
    return OwnDeals(
        states=[
            StateSums(
                state=state,
                marketing=sums[state]["marketing"] or 0,
                sales=sums[state]["sales"] or 0,
                deals=sums[state]["deals"],
            )
            for state in DealState.values
            if state in sums
        ],
        deals=list(listed if limit is None else listed[:limit]),
        total=sum(row["deals"] for row in sums.values()),
    )
