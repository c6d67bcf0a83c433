"""Contribution: pipeline created and revenue closed by source against the target, the
influenced sums and the people behind them; and lifetime revenue after the first sale
(``reports.metrics`` has the definitions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from handoff.models import (
    ContributionTarget,
    DealSource,
    SaleKind,
)

from .aggregates import people_refresh_latest
from .metrics_people import People, people
from .models import SalesDaily
from .periods import quarter_of
from .report_cache import report_cached
from .rollups import Sums, sales_sums
from .snapshot import consistent_read

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


def _pipeline(sums: Sums) -> tuple[SourceSplit, Decimal]:
    """Deals created in the range: by source, and the influenced ones."""
    pipeline = {key: amount for key, (amount, _) in sums.items() if key[2] == SalesDaily.PIPELINE}
    marketing = sum((a for (src, _, _), a in pipeline.items() if src == DealSource.MARKETING), ZERO)
    sales = sum((a for (src, _, _), a in pipeline.items() if src == DealSource.SALES), ZERO)
    influenced = sum((a for (_, infl, _), a in pipeline.items() if infl), ZERO)
    return _split(_money(marketing), _money(sales)), _money(influenced)


# A sale event's amount as revenue: churn takes it out, lost counts nothing.
_REVENUE_SIGN: dict[str, int] = {
    SaleKind.WON: 1,
    SaleKind.EXPANSION: 1,
    SaleKind.RENEWAL: 1,
    SaleKind.CHURN: -1,
}


def _revenue(sums: Sums) -> tuple[SourceSplit, Decimal]:
    """Sale events in the range as revenue, by source, and the influenced deals' part."""
    signed: dict[tuple[str, bool], Decimal] = {}
    for (source, marked, kind), (amount, _) in sums.items():
        sign = _REVENUE_SIGN.get(kind, 0)
        if sign:
            signed[(source, marked)] = signed.get((source, marked), ZERO) + sign * amount
    marketing = sum((a for (src, _), a in signed.items() if src == DealSource.MARKETING), ZERO)
    sales = sum((a for (src, _), a in signed.items() if src == DealSource.SALES), ZERO)
    influenced = sum((a for (_, infl), a in signed.items() if infl), ZERO)
    return _split(_money(marketing), _money(sales)), _money(influenced)


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
    with consistent_read():
        sums = sales_sums(start, end, people_refresh_latest())
    pipeline, influenced_pipeline = _pipeline(sums)
    revenue, influenced_revenue = _revenue(sums)
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
    with consistent_read():
        money = sales_sums(start, end, people_refresh_latest())
    sums: dict[tuple[str, str], Decimal] = {}
    for (source, _, kind), (amount, _) in money.items():
        if kind != SalesDaily.PIPELINE:
            sums[(source, kind)] = _money(sums.get((source, kind), ZERO) + amount)
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
