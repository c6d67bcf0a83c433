"""Contribution: pipeline created and revenue closed by source against the target, the
influenced sums and the people behind them; and lifetime revenue after the first sale
(``reports.metrics`` has the definitions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import (
    Case,
    DecimalField,
    F,
    Q,
    Sum,
    Value,
    When,
)

from handoff.models import (
    ContributionTarget,
    Deal,
    DealSource,
    SaleEvent,
    SaleKind,
)

from .metrics_people import People, people
from .periods import quarter_of, range_moments
from .report_cache import report_cached

ZERO = Decimal("0.00")
SHARE_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class SourceSplit:
    marketing_sourced: Decimal
    sales_sourced: Decimal
    total: Decimal
    marketing_share: Decimal | None


@dataclass(frozen=True)
class Influenced:
    pipeline: Decimal
    revenue: Decimal


@dataclass(frozen=True)
class Contribution:
    pipeline: SourceSplit
    revenue: SourceSplit
    target_share: Decimal | None
    influenced: Influenced
    people: People


def _share(part: Decimal, total: Decimal) -> Decimal | None:
    if total <= 0:
        return None
    return (part / total).quantize(SHARE_PLACES)


def _split(marketing: Decimal, sales: Decimal) -> SourceSplit:
    total = marketing + sales
    return SourceSplit(
        marketing_sourced=marketing,
        sales_sourced=sales,
        total=total,
        marketing_share=_share(marketing, total),
    )


def _money(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(ZERO)


_MONEY = DecimalField(max_digits=20, decimal_places=2)


def _source_is(prefix: str, source: str) -> Q:
    """Deals (reached through ``prefix``) whose effective source is ``source``."""
    return Q(**{f"{prefix}source_override": source}) | Q(
        **{f"{prefix}source_override": "", f"{prefix}derived_source": source}
    )


def _pipeline(start: date, end: date) -> tuple[SourceSplit, Decimal]:
    low, high = range_moments(start, end)
    sums = Deal.objects.filter(occurred_at__gte=low, occurred_at__lt=high).aggregate(
        marketing=Sum("amount", filter=_source_is("", DealSource.MARKETING)),
        sales=Sum("amount", filter=_source_is("", DealSource.SALES)),
        influenced=Sum("amount", filter=Q(influenced=True)),
    )
    return _split(_money(sums["marketing"]), _money(sums["sales"])), _money(sums["influenced"])


def _signed_amount() -> Case:
    """A sale event's amount as revenue: churn takes it out, lost counts nothing."""
    return Case(
        When(kind__in=[SaleKind.WON, SaleKind.EXPANSION, SaleKind.RENEWAL], then=F("amount")),
        When(kind=SaleKind.CHURN, then=-F("amount")),
        default=Value(ZERO),
        output_field=_MONEY,
    )


def _revenue(start: date, end: date) -> tuple[SourceSplit, Decimal]:
    low, high = range_moments(start, end)
    sums = SaleEvent.objects.filter(occurred_at__gte=low, occurred_at__lt=high).aggregate(
        marketing=Sum(_signed_amount(), filter=_source_is("deal__", DealSource.MARKETING)),
        sales=Sum(_signed_amount(), filter=_source_is("deal__", DealSource.SALES)),
        influenced=Sum(_signed_amount(), filter=Q(deal__influenced=True)),
    )
    return _split(_money(sums["marketing"]), _money(sums["sales"])), _money(sums["influenced"])


def target_share_for(day: date) -> Decimal | None:
    """The agreed marketing share of pipeline for the quarter holding ``day``."""
    return (
        ContributionTarget.objects.filter(period=quarter_of(day))
        .values_list("marketing_pipeline_share", flat=True)
        .first()
    )


@report_cached
def contribution(start: date, end: date, known: tuple[str, ...] | None = None) -> Contribution:
    """Pipeline created and revenue closed in the range, by source, against the target."""
    pipeline, influenced_pipeline = _pipeline(start, end)
    revenue, influenced_revenue = _revenue(start, end)
    return Contribution(
        pipeline=pipeline,
        revenue=revenue,
        target_share=target_share_for(end),
        influenced=Influenced(pipeline=influenced_pipeline, revenue=influenced_revenue),
        people=people(start, end, known),
    )


# --- lifetime --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifetimeRow:
    source: str
    won: Decimal
    expansion: Decimal
    renewal: Decimal
    churn: Decimal
    net: Decimal


@report_cached
def lifetime(start: date, end: date) -> list[LifetimeRow]:
    """Sale events in the range by the source of their deal: the first sale (``won``) and
    the relationship after it (``expansion``, ``renewal``, ``churn``); ``net`` = won +
    expansion + renewal - churn. One row per source, marketing first."""
    low, high = range_moments(start, end)
    sums: dict[tuple[str, str], Decimal] = {}
    for source in DealSource.values:
        for kind, amount in (
            SaleEvent.objects.filter(
                _source_is("deal__", source), occurred_at__gte=low, occurred_at__lt=high
            )
            .values("kind")
            .annotate(amount=Sum("amount"))
            .values_list("kind", "amount")
            .order_by()
        ):
            sums[(source, kind)] = _money(amount)
    rows = []
    for source in DealSource.values:
        parts = {kind: sums.get((source, kind), ZERO) for kind in SaleKind.values}
        rows.append(
            LifetimeRow(
                source=source,
                won=parts[SaleKind.WON],
                expansion=parts[SaleKind.EXPANSION],
                renewal=parts[SaleKind.RENEWAL],
                churn=parts[SaleKind.CHURN],
                net=parts[SaleKind.WON]
                + parts[SaleKind.EXPANSION]
                + parts[SaleKind.RENEWAL]
                - parts[SaleKind.CHURN],
            )
        )
    return rows
