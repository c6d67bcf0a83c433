"""Attribution against contribution: why their totals differ for the same days.

Attribution credits each conversion (a ``won``, ``expansion`` or ``renewal``
sale event with an amount) in full to the channels on its path: it credits
gross revenue. Contribution's revenue is net: those sale events less
``churn``. Between the two stand the conversions attribution cannot credit:

- *outside attribution*: conversions the latest complete run read but could
  not credit, because no member of the buying group had a touch within the
  lookback before the sale (``no_touches``) or every such touch belongs to
  people who withdrew analytics consent (``consent_withdrawn``);
- *not yet attributed*: conversions recorded after that run began; the next
  run credits them (see ``reports.freshness``).

So, for any range: ``net_revenue`` = ``gross_attributed`` +
``outside_attribution.amount`` + ``not_yet_attributed.amount`` - ``churn``.
``gross_attributed`` is read from the run's linear credits (every model
splits each credited conversion whole, so any would do; linear is the one
that never leaves credit unallocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    DateTimeField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Sum,
)

from contacts.models import Touch
from handoff.models import DEFAULT_LOOKBACK_DAYS, REVENUE_KINDS, DealContact, SaleEvent, SaleKind

from .aggregates import people_refresh_latest
from .metrics import range_moments
from .models import (
    AttributionCredit,
    AttributionDaily,
    AttributionModel,
    AttributionRun,
    UncreditedMark,
    UncreditedSale,
)
from .per_state import run_read
from .report_cache import report_cached
from .rollups import conversions_per_day, days_within, sales_sums
from .selectors import run_latest_complete
from .snapshot import consistent_read

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Amounts:
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Outside:
    count: int
    amount: Decimal
    no_touches: Amounts
    consent_withdrawn: Amounts


@dataclass(frozen=True)
class Reconciliation:
    run_id: int | None
    run_finished_at: datetime | None
    gross_attributed: Decimal
    churn: Decimal
    net_revenue: Decimal
    outside_attribution: Outside
    not_yet_attributed: Amounts


def _amounts(amounts: list[Decimal]) -> Amounts:
    return Amounts(count=len(amounts), amount=sum(amounts, Decimal(0)).quantize(CENT))


def _touch_in_lookback(lookback_days: int) -> Exists:
    """A member of the sale's deal had a touch in the lookback before the sale.

    Asked member by member, so each is one probe of the touches' (contact, time) index.
    """
    sold_at = OuterRef(OuterRef("occurred_at"))
    window_start = ExpressionWrapper(
        sold_at - timedelta(days=lookback_days), output_field=DateTimeField()
    )
    touched = Touch.objects.filter(
        contact_id=OuterRef("contact_id"), occurred_at__lt=sold_at, occurred_at__gte=window_start
    )
    return Exists(DealContact.objects.filter(deal_id=OuterRef("deal_id")).filter(Exists(touched)))


def _uncredited_noted(
    run: AttributionRun, low: datetime, high: datetime
) -> tuple[int, tuple[int, ...]] | None:
    """The last sale event the report update's note for ``run`` covers, and the sales of
    [low, high) it noted as not credited; None before the note. A note is written once, in
    one transaction, so once there it is kept per process (``reports.per_state``)."""

    def read() -> tuple[int, tuple[int, ...]] | None:
        mark = UncreditedMark.objects.filter(run_id=run.pk).first()
        if mark is None:
            return None
        noted = UncreditedSale.objects.filter(
            run_id=run.pk, occurred_at__gte=low, occurred_at__lt=high
        ).values_list("sale_event_id", flat=True)
        return mark.last_sale_event_id, tuple(noted)

    return run_read(
        run, ("uncredited noted", low, high), read, final=lambda found: found is not None
    )


@report_cached
def reconciliation(start: date, end: date) -> Reconciliation:
    """Gross attributed revenue, churn and net revenue for conversions in the range, and the
    conversions attribution left out, with why (see the module)."""
    low, high = range_moments(start, end)
    in_range = SaleEvent.objects.filter(occurred_at__gte=low, occurred_at__lt=high)
    conversions = in_range.filter(kind__in=REVENUE_KINDS, amount__gt=0)
    with consistent_read():
        state = people_refresh_latest()
        # Gross and churn from the daily money rollup (with the days changed since, live).
        sums = sales_sums(start, end, state)
        per_day = conversions_per_day(start, end, state, REVENUE_KINDS)
    churn_amount = sum(
        (amount for (_, _, kind), (amount, _) in sums.items() if kind == SaleKind.CHURN),
        Decimal(0),
    ).quantize(CENT)
    gross = sum(
        (amount for (_, _, kind), (amount, _) in sums.items() if kind in REVENUE_KINDS),
        Decimal(0),
    )
    net = (gross - churn_amount).quantize(CENT)
    run = run_latest_complete()
    none = Amounts(count=0, amount=Decimal("0.00"))
    if run is None:
        return Reconciliation(
            run_id=None,
            run_finished_at=None,
            gross_attributed=Decimal("0.00"),
            churn=churn_amount,
            net_revenue=net,
            outside_attribution=Outside(0, Decimal("0.00"), none, none),
            not_yet_attributed=Amounts(count=sum(per_day.values()), amount=gross.quantize(CENT)),
        )
    daily = AttributionDaily.objects.filter(
        run=run, model=AttributionModel.LINEAR, day__gte=start, day__lte=end
    )
    # The run's own rows: once per process (``reports.per_state``).
    attributed = run_read(
        run,
        ("linear credit", start, end),
        lambda: daily.order_by().aggregate(credit=Sum("credit"))["credit"] or 0.0,
    )
    # The run credits each conversion whole (its shares sum to one), so a day whose
    # conversions outnumber the run's credited ones holds the sales it did not credit:
    # only those days are searched, by NOT EXISTS (an anti-join) over their credits, and
    # read as ids (the touch check below is then asked of them alone).
    credited = {
        day: round(count or 0.0)
        for day, count in run_read(
            run,
            ("linear conversions per day", start, end),
            lambda: tuple(
                daily.values("day")
                .annotate(count=Sum("conversions"))
                .values_list("day", "count")
                .order_by()
            ),
        )
    }
    short = [day for day, count in per_day.items() if count > credited.get(day, 0)]
    uncredited_ids: list[int] = []
    noted = _uncredited_noted(run, low, high)
    if noted is not None:
        # Noted once for the run by the report update; conversions after the note came
        # after the run, which credited none of them.
        last_noted, noted_ids = noted
        uncredited_ids = [*noted_ids]
        uncredited_ids += conversions.filter(id__gt=last_noted).values_list("pk", flat=True)
    elif short:
        # The credits of those days alone, through their (run, model, time) index.
        credits = AttributionCredit.objects.filter(
            days_within(short, "converted_at"), run=run, model=AttributionModel.LINEAR
        )
        uncredited_ids = list(
            conversions.filter(days_within(short))
            .filter(~Exists(credits.filter(sale_event_id=OuterRef("pk"))))
            .values_list("pk", flat=True)
        )
    # Recorded once the run was reading the record: it may not have seen them.
    started = run.started_at or run.created_at
    touched = _touch_in_lookback(run.lookback_days or DEFAULT_LOOKBACK_DAYS)
    # The uncredited sales themselves (a short list: those of the range the run could not
    # credit, and those since it), each with whether a member was touched in the lookback,
    # in one query; split and summed here (amounts are exact decimals either way).
    parts: dict[str, list[Decimal]] = {"later": [], "no_touches": [], "withdrawn": []}
    for amount, recorded_at, was_touched in (
        SaleEvent.objects.filter(pk__in=uncredited_ids)
        .annotate(touched=touched)
        .values_list("amount", "recorded_at", "touched")
        .order_by()
    ):
        part = "later" if recorded_at >= started else "withdrawn" if was_touched else "no_touches"
        parts[part].append(amount if amount is not None else Decimal(0))
    no_touches, withdrawn = _amounts(parts["no_touches"]), _amounts(parts["withdrawn"])
    later = _amounts(parts["later"])
    return Reconciliation(
        run_id=run.pk,
        run_finished_at=run.finished_at,
        gross_attributed=Decimal(str(round(float(attributed), 2))).quantize(CENT),
        churn=churn_amount,
        net_revenue=net,
        outside_attribution=Outside(
            count=no_touches.count + withdrawn.count,
            amount=no_touches.amount + withdrawn.amount,
            no_touches=no_touches,
            consent_withdrawn=withdrawn,
        ),
        not_yet_attributed=later,
    )
