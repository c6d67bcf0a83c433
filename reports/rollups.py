"""Daily money rollups: deals created and sale events per day, source, influence and kind.

Contribution (pipeline, revenue, influenced) and lifetime sum every deal and sale event of
their range; over a year of a large record that is a scan per request. ``SalesDaily``
holds those sums per local day, so a report reads a few rows per day instead.

It is kept with the people aggregates (``reports.aggregates``), under the same marks: a
deal is changed by its creation, a sale event (its state and influence) and a source
override, all on the ledger with the deal as subject; the days a changed deal touches
(its creation's and its sale events') are summed again from the record, whole. A reader
sums the rollup over the range except the days changed since the marks, and those days
live (``sales_sums``), so its figures are exact at any moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Cast, TruncDate

from handoff.models import REVENUE_KINDS, Deal, SaleEvent
from leadrecord.models import LedgerAction, LedgerEntry

from .models import (
    AttributionCredit,
    AttributionModel,
    PeopleRefresh,
    SalesDaily,
    UncreditedMark,
    UncreditedSale,
)
from .per_state import state_read
from .periods import day_start, reporting_zone
from .report_cache import report_cached
from .selectors import run_latest_complete
from .snapshot import snapshot_remember

# What changes a deal's money rows: all name the deal as their subject.
DEAL_ACTIONS = (
    LedgerAction.DEAL_CREATE,
    LedgerAction.DEAL_OVERRIDE_SOURCE,
    LedgerAction.SALE_RECORD,
)

# (source, influenced, kind) -> (amount, count)
Sums = dict[tuple[str, bool, str], tuple[Decimal, int]]


@dataclass(frozen=True)
class SalesMarks:
    ledger_mark: int
    last_deal_id: int
    last_sale_event_id: int


def _source(prefix: str = "") -> Case:
    """A deal's effective source: its override when set, else the derived one."""
    return Case(
        When(**{f"{prefix}source_override": ""}, then=F(f"{prefix}derived_source")),
        default=F(f"{prefix}source_override"),
        output_field=CharField(),
    )


def days_within(days: Iterable[date], field: str = "occurred_at") -> Q:
    """Moments (``field``) on any of ``days`` (consecutive days as one range)."""
    ordered = sorted(set(days))
    condition = Q(pk__in=[])
    index = 0
    while index < len(ordered):
        last = index
        while last + 1 < len(ordered) and ordered[last + 1] == ordered[last] + timedelta(days=1):
            last += 1
        condition |= Q(
            **{
                f"{field}__gte": day_start(ordered[index]),
                f"{field}__lt": day_start(ordered[last] + timedelta(days=1)),
            }
        )
        index = last + 1
    return condition


def _rows(
    days: Iterable[date] | None, marks: SalesMarks | None
) -> Iterable[tuple[date, str, bool, str, Decimal, int, int]]:
    """(day, source, influenced, kind, amount, count, positive) summed from the record, on ``days``
    (None: every day), of the rows up to ``marks`` (None: all)."""
    zone = reporting_zone()
    deals: QuerySet[Deal] = Deal.objects.all()
    events: QuerySet[SaleEvent] = SaleEvent.objects.all()
    if marks is not None:
        deals = deals.filter(id__lte=marks.last_deal_id)
        events = events.filter(id__lte=marks.last_sale_event_id)
    if days is not None:
        deals, events = deals.filter(days_within(days)), events.filter(days_within(days))
    for day, source, influenced, amount, count, positive in (
        deals.annotate(local_day=TruncDate("occurred_at", tzinfo=zone), effective=_source())
        .values("local_day", "effective", "influenced")
        .annotate(total=Sum("amount"), n=Count("id"), positive=Count("id", filter=Q(amount__gt=0)))
        .values_list("local_day", "effective", "influenced", "total", "n", "positive")
        .order_by()
    ):
        yield day, source, influenced, SalesDaily.PIPELINE, amount, count, positive
    yield from (
        events.annotate(
            local_day=TruncDate("occurred_at", tzinfo=zone),
            effective=_source("deal__"),
            deal_influenced=F("deal__influenced"),
        )
        .values("local_day", "effective", "deal_influenced", "kind")
        .annotate(total=Sum("amount"), n=Count("id"), positive=Count("id", filter=Q(amount__gt=0)))
        .values_list("local_day", "effective", "deal_influenced", "kind", "total", "n", "positive")
        .order_by()
    )


def sales_rollup_write(marks: SalesMarks, days: set[date] | None) -> None:
    """Sum ``days`` (None: all) again from the record into ``SalesDaily``."""
    if days is not None and not days:
        return
    (SalesDaily.objects.all() if days is None else SalesDaily.objects.filter(day__in=days)).delete()
    SalesDaily.objects.bulk_create(
        [
            SalesDaily(
                day=day,
                source=source,
                influenced=influenced,
                kind=kind,
                amount=amount,
                count=n,
                positive=positive,
            )
            for day, source, influenced, kind, amount, n, positive in _rows(days, marks)
        ],
        batch_size=2000,
    )


def sales_days_changed(before: SalesMarks, after: SalesMarks | None = None) -> set[date]:
    """The local days whose money may differ between two states (``after`` None: now): the
    days of the deals the ledger names in between, and of the deals and sale events
    written past the first state's ids."""
    entries = LedgerEntry.objects.filter(
        seq__gt=before.ledger_mark, action__in=DEAL_ACTIONS, subject_type="deal"
    )
    deals_new = Deal.objects.filter(id__gt=before.last_deal_id)
    events_new = SaleEvent.objects.filter(id__gt=before.last_sale_event_id)
    if after is None:
        # Bounded above by the head too: PostgreSQL then walks the primary key over the few
        # recent entries (``seq > n`` alone was planned as a scan of the ledger).
        head = LedgerEntry.objects.order_by("-seq").values("seq")[:1]
        entries = entries.filter(seq__lte=Subquery(head))
    else:
        entries = entries.filter(seq__lte=after.ledger_mark)
        deals_new = deals_new.filter(id__lte=after.last_deal_id)
        events_new = events_new.filter(id__lte=after.last_sale_event_id)
    # The three lists of deals in one query (a union of reads, each on its own index).
    deals = set(
        entries.annotate(deal=Cast("subject_id", BigIntegerField()))
        .values_list("deal", flat=True)
        .order_by()
        .union(
            deals_new.values_list("id", flat=True).order_by(),
            events_new.values_list("deal_id", flat=True).order_by(),
        )
    )
    if not deals:
        return set()
    zone = reporting_zone()
    moments = list(Deal.objects.filter(id__in=deals).values_list("occurred_at", flat=True))
    moments += SaleEvent.objects.filter(deal_id__in=deals).values_list("occurred_at", flat=True)
    return {moment.astimezone(zone).date() for moment in moments}


@report_cached
def _days_changed_since(marks: SalesMarks) -> frozenset[date]:
    # For readers: a page's sections (contribution, reconciliation, lifetime) each ask,
    # and each answer walks the ledger since the marks; once per page is enough.
    return frozenset(sales_days_changed(marks))


def sales_marks_of(state: PeopleRefresh) -> SalesMarks:
    return SalesMarks(
        ledger_mark=state.ledger_mark or 0,
        last_deal_id=state.last_deal_id,
        last_sale_event_id=state.last_sale_event_id,
    )


def sales_sums(start: date, end: date, state: PeopleRefresh | None) -> Sums:
    """Money in [start, end] by (source, influenced, kind): the rollup's days, and the days
    changed since its state summed live (every day live without a usable state). Summed
    once per reader's snapshot (a page's contribution and reconciliation both ask)."""
    state_id = state.pk if state is not None else None
    return dict(
        snapshot_remember(
            f"sales sums {start} {end} {state_id}", lambda: _sales_sums(start, end, state)
        )
    )


def _sales_sums(start: date, end: date, state: PeopleRefresh | None) -> Sums:
    sums: Sums = {}

    def add(key: tuple[str, bool, str], amount: Decimal, count: int) -> None:
        known, seen = sums.get(key, (Decimal(0), 0))
        sums[key] = (known + amount, seen + count)

    usable = state is not None and state.ledger_mark is not None
    if usable and state is not None and state.time_zone == reporting_zone().key:
        live = {day for day in _days_changed_since(sales_marks_of(state)) if start <= day <= end}
        known = state_read(
            state,
            ("sales sums", start, end, frozenset(live)),
            lambda: tuple(
                SalesDaily.objects.filter(day__gte=start, day__lte=end)
                .exclude(day__in=live)
                .values("source", "influenced", "kind")
                .annotate(total=Sum("amount"), n=Sum("count"))
                .values_list("source", "influenced", "kind", "total", "n")
                .order_by()
            ),
        )
        for source, influenced, kind, amount, count in known:
            add((source, influenced, kind), amount, count)
        days: Iterable[date] = live
    else:
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    if days:
        for _, source, influenced, kind, amount, count, _ in _rows(days, None):
            add((source, influenced, kind), amount, count)
    return sums


def conversions_per_day(
    start: date, end: date, state: PeopleRefresh | None, kinds: Iterable[str]
) -> dict[date, int]:
    """Sale events of ``kinds`` with an amount above zero per day of [start, end]: from the
    rollup, and the days changed since its state (every day without one) counted live."""
    kinds = list(kinds)
    counts: dict[date, int] = {}
    if (
        state is not None
        and state.ledger_mark is not None
        and state.time_zone == reporting_zone().key
    ):
        live = {day for day in _days_changed_since(sales_marks_of(state)) if start <= day <= end}
        known = state_read(
            state,
            ("conversions per day", start, end, tuple(sorted(kinds)), frozenset(live)),
            lambda: tuple(
                SalesDaily.objects.filter(day__gte=start, day__lte=end, kind__in=kinds)
                .exclude(day__in=live)
                .values("day")
                .annotate(n=Sum("positive"))
                .values_list("day", "n")
                .order_by()
            ),
        )
        for day, positive in known:
            counts[day] = int(positive)
        days: Iterable[date] = live
    else:
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    if days:
        for day, _, _, kind, _, _, positive in _rows(days, None):
            if kind in kinds and positive:
                counts[day] = counts.get(day, 0) + positive
    return counts


def uncredited_sales_record() -> None:
    """For the latest complete run, note once which conversions it did not credit (a
    single anti-join over its credits, here rather than in every reconciliation); the
    notes of older runs go."""
    run = run_latest_complete()
    if run is None or UncreditedMark.objects.filter(run_id=run.pk).exists():
        return
    last = SaleEvent.objects.aggregate(last=Max("id"))["last"] or 0
    credits = AttributionCredit.objects.filter(run=run, model=AttributionModel.LINEAR)
    UncreditedSale.objects.bulk_create(
        [
            UncreditedSale(run_id=run.pk, sale_event_id=pk, occurred_at=moment)
            for pk, moment in SaleEvent.objects.filter(
                kind__in=REVENUE_KINDS, amount__gt=0, id__lte=last
            )
            .filter(~Exists(credits.filter(sale_event_id=OuterRef("pk"))))
            .values_list("pk", "occurred_at")
        ],
        batch_size=2000,
    )
    UncreditedMark.objects.create(run_id=run.pk, last_sale_event_id=last)
    UncreditedSale.objects.exclude(run_id=run.pk).delete()
    UncreditedMark.objects.exclude(run_id=run.pk).delete()
