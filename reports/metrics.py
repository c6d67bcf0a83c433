"""The numbers behind the reports and dashboards: contribution, funnel, leakage, attribution
side by side, campaign ROI and lifetime revenue.

Every function takes inclusive ``start`` and ``end`` days in the reporting time zone
(``settings.TIME_ZONE``): a moment belongs to the range when its local day is between
them, both included. Results are frozen dataclasses of plain values: ``Decimal`` for
money, ``int`` for counts, ``float`` for attribution credit, conversion rates and days.

Definitions (DESIGN.md principles 1, 5-8):

- A deal's source is its ``source_override`` when set, else its ``derived_source``.
- Pipeline: the amounts of deals created (``Deal.occurred_at``) in the range.
- Revenue: ``won`` + ``expansion`` + ``renewal`` less ``churn`` sale events in the range,
  each counted for the source of its deal.
- ``marketing_share`` = marketing-sourced / total, ``None`` when the total is not positive.
- ``target_share``: the ``ContributionTarget`` of the quarter holding ``end``, or ``None``.
- Influenced pipeline and revenue: the same sums over deals marked ``influenced``.
- People are distinct persons (a merged contact counts once, as the one it was merged
  into; an erased person still counts, so totals survive erasure, principle 10):
  ``contacts`` created by ``end``; ``engaged``, with a touch in the range;
  ``qualified``, with a qualification (to qualified) in the range; ``handed_off``, with a
  handoff created in the range; ``accepted``, with a handoff accepted in the range;
  ``customers``, members of deals with a ``won`` event in the range.
- Funnel: those six stages in that order; ``conversion_to_next`` is the next stage's
  people over this one's, both counted in the range (a period view, not a cohort);
  ``median_days_in_stage``, over the people who left the stage in the range: creation to
  first touch, first touch to first qualification, first qualification to first handoff,
  handoff to decision, first acceptance to first won deal. Leaks: see ``LEAK_QUERIES``
  (each count is the ``.count()`` of the query its list page shows).

Speed: money comes straight from deals and sale events (indexed by time); people counts
and the first-touch times come from the aggregates in ``reports.aggregates``, rebuilt by
the nightly attribution run, with whatever was written or merged since counted live on
top, so every number is exact (nothing is sampled or estimated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from contacts.models import Campaign, Channel, Contact, Touch
from handoff.models import (
    ContributionTarget,
    Deal,
    DealContact,
    DealSource,
    DealState,
    Handoff,
    HandoffStatus,
    Qualification,
    RejectReason,
    SaleEvent,
    SaleKind,
)

from .aggregates import people_refresh_latest
from .attribution_credits import UNALLOCATED_CHANNEL_ID, UNALLOCATED_KEY
from .models import (
    AttributionDaily,
    AttributionModel,
    CreatedDayCount,
    PeopleRefresh,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)
from .report_cache import report_cached
from .selectors import run_latest_complete

ZERO = Decimal("0.00")
SHARE_PLACES = Decimal("0.0001")
# A deal with no sale event for this long is stalled (issue 7, "deals without a sale
# event for 90 days").
STALLED_AFTER_DAYS = 90
LIST_PATH = "/reports/lists/"
SECONDS_PER_DAY = 86400


# --- dates ------------------------------------------------------------------------------


def reporting_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date) -> datetime:
    """The first moment of ``day`` in the reporting time zone."""
    return datetime.combine(day, time.min, tzinfo=reporting_zone())


def range_moments(start: date, end: date) -> tuple[datetime, datetime]:
    """``[first moment of start, first moment after end)``: the range as a half-open span."""
    return day_start(start), day_start(end + timedelta(days=1))


def quarter_of(day: date) -> str:
    """The ``YYYY-Qn`` period holding ``day`` (ContributionTarget.period)."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_first_day(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def range_or_default(start: date | None, end: date | None) -> tuple[date, date]:
    """The range a report reads when ``from`` or ``to`` is left out: ``to`` is today and
    ``from`` the first day of ``to``'s quarter."""
    end = end or timezone.localdate()
    return start or quarter_first_day(end), end


# --- contribution ---------------------------------------------------------------------


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
class People:
    contacts: int
    engaged: int
    qualified: int
    handed_off: int
    accepted: int
    customers: int


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


@dataclass(frozen=True)
class _Changes:
    """What the people aggregates do not know yet: touches, contacts, sale events and deal
    members written after their rebuild, and merges since (a merged person's rows moved to
    the survivor)."""

    refresh: PeopleRefresh | None
    merged: frozenset[int]
    survivors: frozenset[int]

    @property
    def changed(self) -> frozenset[int]:
        return self.merged | self.survivors

    @property
    def last_touch_id(self) -> int:
        return self.refresh.last_touch_id if self.refresh else 0

    @property
    def last_contact_id(self) -> int:
        return self.refresh.last_contact_id if self.refresh else 0


def _changes() -> _Changes:
    refresh = people_refresh_latest()
    if refresh is None:
        # Never rebuilt: every row is "new" and counted live (correct, only slower).
        return _Changes(None, frozenset(), frozenset())
    merges = list(
        Contact.objects.filter(
            merged_into__isnull=False, merged_at__gte=refresh.refreshed_at
        ).values_list("id", "merged_into_id")
    )
    return _Changes(
        refresh=refresh,
        merged=frozenset(merged for merged, _ in merges),
        survivors=frozenset(survivor for _, survivor in merges if survivor is not None),
    )


def _contacts_created_by(end: date, changes: _Changes) -> int:
    """Persons (contacts not merged into another) created on or before ``end``."""
    _, high = range_moments(end, end)
    known = 0
    if changes.refresh is not None:
        known = (
            CreatedDayCount.objects.filter(day__lte=end)
            .order_by("-day")
            .values_list("people", flat=True)
            .first()
        ) or 0
        known -= PersonMilestone.objects.filter(
            contact_id__in=changes.merged, created_at__lt=high
        ).count()
    newer = Contact.objects.filter(
        id__gt=changes.last_contact_id, merged_into__isnull=True, created_at__lt=high
    ).count()
    return known + newer


def _touch_days_first_in(start: date, end: date) -> QuerySet[TouchDay]:
    """Each person's first touch day within [start, end]: one row per person touched."""
    return TouchDay.objects.filter(day__gte=start, day__lte=end).filter(
        Q(previous_day__lt=start) | Q(previous_day__isnull=True)
    )


def _touched_known(start: date, end: date, changes: _Changes) -> int:
    """People touched in [start, end] as the rebuild knew them, less the people changed since."""
    refresh = changes.refresh
    if refresh is None:
        return 0
    changed = _touch_days_first_in(start, end).filter(contact_id__in=changes.changed).count()
    if connection.vendor != "postgresql":
        return _touch_days_first_in(start, end).count() - changed
    if refresh.first_touch_day is None or refresh.last_touch_day is None:
        return 0
    first, last = max(start, refresh.first_touch_day), min(end, refresh.last_touch_day)
    if first > last:
        return 0
    table = connection.ops.quote_name(TouchDayCount._meta.db_table)
    with connection.cursor() as cursor:
        # One probe per day of the range (bounded by the days with touches at all): the
        # day's cumulative count up to the greatest previous day before ``start``.
        cursor.execute(
            f"""
            SELECT coalesce(sum(counted.people), 0)
            FROM generate_series(%s::date, %s::date, interval '1 day') AS days(day)
            CROSS JOIN LATERAL (
                SELECT people FROM {table}
                WHERE day = days.day::date AND previous_day < %s
                ORDER BY previous_day DESC LIMIT 1
            ) AS counted
            """,  # noqa: S608 (the table name from the model, values as parameters)
            [first, last, start],
        )
        row = cursor.fetchone()
    return int(row[0] if row else 0) - changed


def _engaged(start: date, end: date, changes: _Changes) -> int:
    """Distinct persons with a touch in the range.

    A person touched in [start, end] has exactly one touch day there whose previous touch
    day is before ``start`` (or who has none), so counting those ``TouchDay`` rows counts
    each person once (on PostgreSQL from ``TouchDayCount``, a probe per day). Touches
    written since the rebuild and the people merged since are then counted live.
    """
    low, high = range_moments(start, end)
    known = _touched_known(start, end, changes)
    recent = set(
        Touch.objects.filter(occurred_at__gte=low, occurred_at__lt=high)
        .filter(Q(id__gt=changes.last_touch_id) | Q(contact_id__in=changes.survivors))
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by()
    )
    recent -= changes.merged
    unchanged = recent - changes.changed
    counted_already = set(
        TouchDay.objects.filter(contact_id__in=unchanged, day__gte=start, day__lte=end)
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by()
    )
    return known + len(recent - counted_already)


def _handoffs(known: tuple[str, ...] | None) -> QuerySet[Handoff]:
    """Every handoff, or, for a reader who may not know of them all, those whose say-so is
    in ``known`` (``handoff.selectors.handoff_audiences_known_to``): a handoff opened on a
    say-so outside a reader's audience counts for that reader nowhere, as if it were not."""
    if known is None:
        return Handoff.objects.all()
    return Handoff.objects.filter(say_so_audience__in=known)


@report_cached
def people(start: date, end: date, known: tuple[str, ...] | None = None) -> People:
    """Distinct people at each stage in the range (see the module's definitions)."""
    low, high = range_moments(start, end)
    changes = _changes()
    won = SaleEvent.objects.filter(kind=SaleKind.WON, occurred_at__gte=low, occurred_at__lt=high)
    return People(
        contacts=_contacts_created_by(end, changes),
        engaged=_engaged(start, end, changes),
        qualified=_distinct_contacts(
            Qualification.objects.filter(qualified=True, occurred_at__gte=low, occurred_at__lt=high)
        ),
        handed_off=_distinct_contacts(
            _handoffs(known).filter(occurred_at__gte=low, occurred_at__lt=high)
        ),
        accepted=_distinct_contacts(
            _handoffs(known).filter(
                status=HandoffStatus.ACCEPTED, decided_at__gte=low, decided_at__lt=high
            )
        ),
        customers=_distinct_contacts(DealContact.objects.filter(deal_id__in=won.values("deal_id"))),
    )


def _distinct_contacts(rows: QuerySet[Any]) -> int:
    # No ordering: a model's default ordering would join the DISTINCT and count rows.
    return rows.values("contact_id").order_by().distinct().count()


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


# --- funnel and leakage -------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    people: int
    conversion_to_next: float | None
    median_days_in_stage: float | None


@dataclass(frozen=True)
class Leak:
    key: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class Funnel:
    stages: list[Stage]
    leakage: list[Leak]


STAGES = (
    ("contacts", "Contacts"),
    ("engaged", "Engaged"),
    ("qualified", "Qualified"),
    ("handed_off", "Handed off"),
    ("accepted", "Accepted"),
    ("customers", "Customers"),
)

LEAKS = (
    ("qualified_not_handed_off", "Qualified, never handed off"),
    ("handoffs_expired", "Handoffs expired"),
    ("rejected_not_reengaged", "Rejected, not re-engaged"),
    ("deals_stalled", f"Deals without a sale event for {STALLED_AFTER_DAYS} days"),
)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / SECONDS_PER_DAY


def _firsts(rows: QuerySet[Any], moment: str) -> dict[int, datetime]:
    """Each person's earliest ``moment`` among ``rows``."""
    return dict(
        rows.values("contact_id").annotate(first=Min(moment)).values_list("contact_id", "first")
    )


def _firsts_within(
    rows: QuerySet[Any], moment: str, low: datetime, high: datetime
) -> dict[int, datetime]:
    """The people whose earliest ``moment`` among ``rows`` is in [low, high), with it (the
    filter on the earliest is a HAVING, in the database)."""
    return dict(
        rows.values("contact_id")
        .annotate(first=Min(moment))
        .filter(first__gte=low, first__lt=high)
        .values_list("contact_id", "first")
        .order_by()
    )


def _first_wins_of(persons: list[int], changes: _Changes) -> dict[int, datetime]:
    """When each of these people first became a customer (the first won deal they were a
    member of): from ``PersonMilestone``, and live for those whose first win it may not
    know (in a deal won, or added to a deal, since the rebuild, or merged into since)."""
    refresh = changes.refresh
    wins = SaleEvent.objects.filter(kind=SaleKind.WON)
    recent = set(persons)
    found: dict[int, datetime] = {}
    if refresh is not None:
        recent &= set(
            DealContact.objects.filter(
                Q(id__gt=refresh.last_deal_member_id)
                | Q(deal_id__in=wins.filter(id__gt=refresh.last_sale_event_id).values("deal_id"))
            ).values_list("contact_id", flat=True)
        ) | set(changes.survivors)
        found = {
            person: first
            for person, first in PersonMilestone.objects.filter(
                contact_id__in=set(persons) - recent, first_won_at__isnull=False
            ).values_list("contact_id", "first_won_at")
            if first is not None
        }
    if recent:
        found.update(
            dict(
                wins.filter(deal__members__contact_id__in=recent)
                .values(person=F("deal__members__contact_id"))
                .annotate(first=Min("occurred_at"))
                .values_list("person", "first")
                .order_by()
            )
        )
    return found


def _spans(
    entered: dict[int, datetime], left: dict[int, datetime], low: datetime, high: datetime
) -> list[float]:
    """Days from entering to leaving a stage, for the people who left it in [low, high)
    after entering it (a stage entered after it was left, as for back-filled history, has
    no meaningful time in it and is left out)."""
    return [
        _days(moment - entered[person])
        for person, moment in left.items()
        if low <= moment < high and person in entered and entered[person] <= moment
    ]


def _median_days_to_first_touch(low: datetime, high: datetime, changes: _Changes) -> float | None:
    """Median days from creation to first touch, for people first touched in [low, high):
    from the aggregate (the median itself in the database on PostgreSQL), and live for the
    people whose first touch it may not know (touched, created or merged into since)."""
    recent = set(
        Touch.objects.filter(id__gt=changes.last_touch_id)
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by()
    )
    recent |= changes.survivors
    recent |= set(
        Contact.objects.filter(id__gt=changes.last_contact_id).values_list("id", flat=True)
    )
    live: list[float] = []
    if recent:
        created = dict(
            Contact.objects.filter(id__in=recent, merged_into__isnull=True).values_list(
                "id", "created_at"
            )
        )
        first_touch = _firsts(Touch.objects.filter(contact_id__in=created), "occurred_at")
        live = _spans(created, first_touch, low, high)
    leave_out = sorted(recent | changes.merged)
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(PersonMilestone._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY span) FROM (
                    SELECT EXTRACT(EPOCH FROM first_touch_at - created_at) / %s AS span
                    FROM {table}
                    WHERE first_touch_at >= %s AND first_touch_at < %s
                    AND created_at <= first_touch_at AND NOT (contact_id = ANY(%s::bigint[]))
                    UNION ALL SELECT unnest(%s::double precision[])
                ) AS spans
                """,  # noqa: S608 (the table name from the model, values as parameters)
                [SECONDS_PER_DAY, low, high, leave_out, live],
            )
            row = cursor.fetchone()
        return None if row is None or row[0] is None else float(row[0])
    known = (
        PersonMilestone.objects.filter(
            first_touch_at__gte=low, first_touch_at__lt=high, created_at__lte=F("first_touch_at")
        )
        .exclude(contact_id__in=leave_out)
        .values_list("created_at", "first_touch_at")
    )
    return _median(
        [_days(touched - created) for created, touched in known if touched is not None] + live
    )


@report_cached
def median_days_in_stage(
    start: date, end: date, known: tuple[str, ...] | None = None
) -> dict[str, float | None]:
    """Median days in each stage of the people who left it in the range:

    - contacts: creation to first touch, for people first touched in the range;
    - engaged: first touch to first qualification, for people first qualified in the range;
    - qualified: first qualification to first handoff, for people first handed off in it;
    - handed_off: handoff to decision (accepted, rejected or expired), for handoffs decided
      in it;
    - accepted: first acceptance to first won deal, for people who became customers in it;
    - customers: the last stage, no time.
    """
    low, high = range_moments(start, end)
    changes = _changes()
    qualifications = Qualification.objects.filter(qualified=True)
    handoffs = _handoffs(known)
    acceptances = _handoffs(known).filter(status=HandoffStatus.ACCEPTED)
    first_qualified = _firsts_within(qualifications, "occurred_at", low, high)
    first_handoff = _firsts_within(handoffs, "occurred_at", low, high)
    first_accepted = _firsts(acceptances, "decided_at")
    first_won = _first_wins_of(list(first_accepted), changes)
    first_touch = _first_touches(list(first_qualified))
    qualified_before = _firsts(
        qualifications.filter(contact_id__in=list(first_handoff)), "occurred_at"
    )
    decisions = [
        _days(decided - handed)
        for handed, decided in _handoffs(known)
        .filter(decided_at__gte=low, decided_at__lt=high)
        .values_list("occurred_at", "decided_at")
        if decided is not None and decided >= handed
    ]
    return {
        "contacts": _median_days_to_first_touch(low, high, changes),
        "engaged": _median(_spans(first_touch, first_qualified, low, high)),
        "qualified": _median(_spans(qualified_before, first_handoff, low, high)),
        "handed_off": _median(decisions),
        "accepted": _median(_spans(first_accepted, first_won, low, high)),
        "customers": None,
    }


def _first_touches(contact_ids: list[int]) -> dict[int, datetime]:
    """These people's first touches: from the aggregate, live for anyone it does not have."""
    found = {
        contact_id: moment
        for contact_id, moment in PersonMilestone.objects.filter(
            contact_id__in=contact_ids, first_touch_at__isnull=False
        ).values_list("contact_id", "first_touch_at")
        if moment is not None
    }
    missing = [contact_id for contact_id in contact_ids if contact_id not in found]
    if missing:
        found.update(_firsts(Touch.objects.filter(contact_id__in=missing), "occurred_at"))
    return found


@report_cached
def funnel(start: date, end: date, known: tuple[str, ...] | None = None) -> Funnel:
    """People at each stage in the range, conversion to the next stage (the next stage's
    people over this stage's, both counted in the same range, so not a cohort) and the
    median days people who left a stage in the range had spent in it; and the leaks."""
    counts = people(start, end, known)
    numbers = [getattr(counts, key) for key, _ in STAGES]
    medians = median_days_in_stage(start, end, known)
    stages = []
    for index, (key, label) in enumerate(STAGES):
        following = numbers[index + 1] if index + 1 < len(numbers) else None
        conversion = (
            following / numbers[index] if following is not None and numbers[index] else None
        )
        stages.append(
            Stage(
                key=key,
                label=label,
                people=numbers[index],
                conversion_to_next=conversion,
                median_days_in_stage=medians.get(key),
            )
        )
    return Funnel(stages=stages, leakage=leakage(start, end, known))


def leak_url(key: str, start: date, end: date) -> str:
    return f"{LIST_PATH}{key.replace('_', '-')}/?" + urlencode(
        {"from": start.isoformat(), "to": end.isoformat()}
    )


def qualified_not_handed_off(
    start: date, end: date, known: tuple[str, ...] | None = None
) -> QuerySet[Contact]:
    """People qualified in the range who had never been handed off by the end of ``end``.

    "Never", not "not since the qualification": scoring may record a qualification after
    a handoff (a rescore under a new ruleset), and that person was handed off."""
    low, high = range_moments(start, end)
    qualified = Qualification.objects.filter(
        qualified=True, occurred_at__gte=low, occurred_at__lt=high
    ).values("contact_id")
    handed = _handoffs(known).filter(occurred_at__lt=high).values("contact_id")
    return Contact.objects.filter(id__in=qualified, merged_into__isnull=True).exclude(id__in=handed)


def handoffs_expired(
    start: date, end: date, known: tuple[str, ...] | None = None
) -> QuerySet[Contact]:
    """People whose handoff expired (SLA breached) in the range."""
    low, high = range_moments(start, end)
    ids = (
        _handoffs(known)
        .filter(status=HandoffStatus.EXPIRED, decided_at__gte=low, decided_at__lt=high)
        .values("contact_id")
    )
    return Contact.objects.filter(id__in=ids)


def rejected_not_reengaged(
    start: date, end: date, known: tuple[str, ...] | None = None
) -> QuerySet[Contact]:
    """People rejected by sales in the range (not as duplicates) with no touch and no new
    handoff after the rejection, up to ``end``."""
    low, high = range_moments(start, end)
    later_touch = Touch.objects.filter(
        contact_id=OuterRef("contact_id"),
        occurred_at__gt=OuterRef("decided_at"),
        occurred_at__lt=high,
    )
    later_handoff = _handoffs(known).filter(
        contact_id=OuterRef("contact_id"),
        occurred_at__gt=OuterRef("decided_at"),
        occurred_at__lt=high,
    )
    ids = (
        _handoffs(known)
        .filter(status=HandoffStatus.REJECTED, decided_at__gte=low, decided_at__lt=high)
        .exclude(reason=RejectReason.DUPLICATE)
        .annotate(touched=Exists(later_touch), again=Exists(later_handoff))
        .filter(touched=False, again=False)
        .values("contact_id")
    )
    return Contact.objects.filter(id__in=ids)


def deals_stalled(start: date, end: date, known: tuple[str, ...] | None = None) -> QuerySet[Deal]:
    """Deals open at the end of ``end`` that were created 90 days or more before it and have
    no sale event by then (a snapshot as of ``end``; ``start`` does not matter)."""
    _, high = range_moments(end, end)
    events_by_then = SaleEvent.objects.filter(deal_id=OuterRef("pk"), occurred_at__lt=high)
    # Open at the end of ``end``: open now, or closed only by a sale event after it (a
    # short list: for a range ending today, none).
    closed_after = SaleEvent.objects.filter(occurred_at__gte=high).values("deal_id")
    return (
        Deal.objects.filter(occurred_at__lte=high - timedelta(days=STALLED_AFTER_DAYS))
        .filter(Q(state=DealState.OPEN) | Q(id__in=closed_after))
        .exclude(Exists(events_by_then))
    )


class LeakQuery(Protocol):
    """The range, and the reader's ``known`` handoff audiences (see ``_handoffs``)."""

    def __call__(
        self, start: date, end: date, known: tuple[str, ...] | None = None, /
    ) -> QuerySet[Any]: ...


LEAK_QUERIES: dict[str, LeakQuery] = {
    "qualified_not_handed_off": qualified_not_handed_off,
    "handoffs_expired": handoffs_expired,
    "rejected_not_reengaged": rejected_not_reengaged,
    "deals_stalled": deals_stalled,
}


@report_cached
def leakage(start: date, end: date, known: tuple[str, ...] | None = None) -> list[Leak]:
    return [
        Leak(
            key=key,
            label=label,
            count=LEAK_QUERIES[key](start, end, known).count(),
            url=leak_url(key, start, end),
        )
        for key, label in LEAKS
    ]


# --- attribution side by side, campaign ROI ------------------------------------------------


@dataclass(frozen=True)
class ModelRow:
    key: str
    credits: dict[str, float] = field(default_factory=dict)


GROUPINGS = ("channel", "campaign", "team")
_GROUP_FIELDS = {"channel": "channel_id", "campaign": "campaign_id", "team": "team"}


def _group_names(group_by: str) -> dict[Any, str]:
    if group_by == "channel":
        return {
            UNALLOCATED_CHANNEL_ID: UNALLOCATED_KEY,
            **dict(Channel.objects.values_list("id", "key")),
        }
    if group_by == "campaign":
        return dict(Campaign.objects.values_list("id", "name"))
    return {}


def _daily(start: date, end: date) -> QuerySet[AttributionDaily] | None:
    run = run_latest_complete()
    if run is None:
        return None
    return AttributionDaily.objects.filter(run=run, day__gte=start, day__lte=end)


@report_cached
def attribution_by_model(start: date, end: date, group_by: str) -> list[ModelRow]:
    """Credit per channel, campaign or team under each of the eight models, from the latest
    complete run, for conversions in the range; largest linear credit first."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPINGS)}")
    daily = _daily(start, end)
    if daily is None:
        return []
    names = _group_names(group_by)
    table: dict[str, dict[str, float]] = {}
    for item in (
        daily.values("model", key=F(_GROUP_FIELDS[group_by]))
        .annotate(credit=Sum("credit"))
        .order_by()
    ):
        key = "(none)" if item["key"] is None else names.get(item["key"], str(item["key"]))
        table.setdefault(key, {model: 0.0 for model in AttributionModel.values})
        table[key][item["model"]] += float(item["credit"] or 0.0)
    rows = [
        ModelRow(key=key, credits={model: round(value, 2) for model, value in credits.items()})
        for key, credits in table.items()
    ]
    return sorted(rows, key=lambda row: (-row.credits[AttributionModel.LINEAR], row.key))


@dataclass(frozen=True)
class CampaignRoi:
    campaign_id: int
    name: str
    channel: str
    cost: Decimal
    attributed_revenue: float
    roi: float | None


@report_cached
def campaign_roi(start: date, end: date, model: str) -> list[CampaignRoi]:
    """Every campaign's cost (its whole recorded cost) against the revenue ``model`` credits
    it with for conversions in the range; ``roi`` = (attributed - cost) / cost, ``None``
    for a campaign that cost nothing. Largest attributed revenue first."""
    if model not in AttributionModel.values:
        raise ValueError(f"model must be one of {', '.join(AttributionModel.values)}")
    daily = _daily(start, end)
    attributed: dict[int | None, float] = {}
    if daily is not None:
        attributed = {
            campaign_id: float(credit or 0.0)
            for campaign_id, credit in daily.filter(model=model, campaign_id__isnull=False)
            .values("campaign_id")
            .annotate(credit=Sum("credit"))
            .values_list("campaign_id", "credit")
            .order_by()
        }
    rows = []
    for campaign_id, name, channel, cost in Campaign.objects.values_list(
        "id", "name", "channel__key", "cost"
    ):
        revenue = round(attributed.get(campaign_id, 0.0), 2)
        rows.append(
            CampaignRoi(
                campaign_id=campaign_id,
                name=name,
                channel=channel,
                cost=cost,
                attributed_revenue=revenue,
                roi=round((revenue - float(cost)) / float(cost), 4) if cost > 0 else None,
            )
        )
    return sorted(rows, key=lambda row: (-row.attributed_revenue, row.name))


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
