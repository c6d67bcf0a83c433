"""The funnel and where people leak: people at each stage, conversion to the next, median
days in a stage, and the leak queries whose lists the report pages show
(``reports.metrics`` has the definitions)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from django.db import connection
from django.db.models import (
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
)

from contacts.models import Contact, Touch
from handoff.models import (
    Deal,
    DealState,
    HandoffStatus,
    Qualification,
    RejectReason,
    SaleEvent,
    SaleKind,
)

from .aggregates_sql import SPAN_HOUR_SQL
from .counting import count_each, rows_each
from .metrics_people import (
    Changes,
    changes_since_refresh,
    handoffs_visible,
    members_changed_since,
    people,
)
from .models import FirstTouchHour, PersonMilestone
from .per_state import state_read
from .periods import range_moments, reporting_zone
from .report_cache import report_cached
from .since_state import since_state
from .snapshot import consistent_read

# A deal with no sale event for this long is stalled (issue 7, "deals without a sale
# event for 90 days").
STALLED_AFTER_DAYS = 90
LIST_PATH = "/reports/lists/"
SECONDS_PER_DAY = 86400


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
    return dict(_firsts_query(rows, moment))


def _firsts_query(rows: QuerySet[Any], moment: str) -> QuerySet[Any]:
    return (
        rows.values("contact_id")
        .annotate(first=Min(moment))
        .values_list("contact_id", "first")
        .order_by()
    )


def _firsts_within_query(
    rows: QuerySet[Any], moment: str, low: datetime, high: datetime
) -> QuerySet[Any]:
    """The people whose earliest ``moment`` among ``rows`` is in [low, high), with it: the
    range's rows of people with none before ``low`` (the range on an index, and each
    person's earlier rows on another), not every row grouped by person."""
    earlier = rows.filter(contact_id=OuterRef("contact_id"), **{f"{moment}__lt": low})
    return _firsts_query(
        rows.filter(**{f"{moment}__gte": low, f"{moment}__lt": high}).exclude(Exists(earlier)),
        moment,
    )


def _first_wins_of(persons: list[int], changes: Changes) -> dict[int, datetime]:
    """When each of these people first became a customer (the first won deal they were a
    member of): from ``PersonMilestone``, and live for those whose first win it may not
    know (in a deal won, or added to a deal, since the rebuild, or merged into since)."""
    refresh = changes.refresh
    wins = SaleEvent.objects.filter(kind=SaleKind.WON)
    recent = set(persons)
    found: dict[int, datetime] = {}
    if refresh is not None:
        recent &= members_changed_since(refresh) | set(changes.survivors)
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


def _median_days_to_first_touch(days: tuple[date, date], changes: Changes) -> float | None:
    """Median days from creation to first touch, for people first touched in the days:
    from the aggregate (on PostgreSQL through its hourly histogram), and live for the
    people whose first touch it may not know (touched, created or merged into since)."""
    low, high = range_moments(*days)
    recent = _first_touch_moved(changes)
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
    # PostgreSQL: the median in the database rather than every span read back, which
    # bench/report_latency.py's stage reports need; elsewhere (the embedded SQLite
    # default, which has no percentile) the same median taken here.
    if connection.vendor == "postgresql":
        return _median_from_hours(days, leave_out, live, changes)
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


def _first_touch_moved(changes: Changes) -> set[int]:
    """The people touched since the state whose first touch the aggregate may not know:
    those it has no first touch for, and those touched since before it (read in parts per
    process: ``reports.since_state``)."""
    return since_state(
        "first touch moved",
        refresh=changes.refresh,
        read=_first_touch_moved_read,
        # PostgreSQL, where events stream in: a new state carries the last one's answer
        # over (``reports.since_state``).
        recheck=_first_touch_moved_recheck if connection.vendor == "postgresql" else None,
    )


def _first_touch_moved_recheck(persons: list[int], after: int, up_to: int) -> set[int]:
    """Of ``persons``, those whose earliest touch with an id in (after, up_to] is before
    their known first touch, or who have none known (PostgreSQL): each person's touches
    in time order on the (person, time) index, and a probe of their milestone."""
    touches = connection.ops.quote_name(Touch._meta.db_table)
    milestones = connection.ops.quote_name(PersonMilestone._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT recent.contact_id FROM (
                SELECT person AS contact_id, (
                    SELECT min(touch.occurred_at) FROM {touches} AS touch
                    WHERE touch.contact_id = person AND touch.id > %s AND touch.id <= %s
                ) AS first
                FROM unnest(%s::bigint[]) AS person
            ) AS recent
            WHERE recent.first IS NOT NULL AND NOT coalesce((
                SELECT known.first_touch_at <= recent.first FROM {milestones} AS known
                WHERE known.contact_id = recent.contact_id
            ), false)
            """,  # noqa: S608 (the table names from the models, values as parameters)
            [after, up_to, persons],
        )
        return {row[0] for row in cursor.fetchall()}


def _first_touch_moved_read(after: int, up_to: int, also: list[int]) -> set[int]:
    """Of the touches with an id in (after, up_to] or in ``also``, the people whose earliest
    is before their known first touch (or who have none known). A touch later than a
    person's known first touch leaves it as it is, and while events stream in that is
    nearly every touch since the state: the comparison is made in the database, so only
    the few whose first touch moved are read back, with one probe of a person's milestone
    each (a join was planned as a scan of every milestone)."""
    touches = connection.ops.quote_name(Touch._meta.db_table)
    milestones = connection.ops.quote_name(PersonMilestone._meta.db_table)
    params: list[Any]
    if connection.vendor == "postgresql":
        chosen, params = "(id > %s AND id <= %s) OR id = ANY(%s::bigint[])", [after, up_to, also]
    else:
        # SQLite has no arrays: the few ids named as values.
        listed = ", ".join(["%s"] * len(also)) or "NULL"
        chosen, params = f"(id > %s AND id <= %s) OR id IN ({listed})", [after, up_to, *also]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT recent.contact_id FROM (
                SELECT contact_id, MIN(occurred_at) AS first FROM {touches}
                WHERE {chosen} GROUP BY contact_id
            ) AS recent
            WHERE NOT coalesce((
                SELECT known.first_touch_at <= recent.first FROM {milestones} AS known
                WHERE known.contact_id = recent.contact_id
            ), false)
            """,  # noqa: S608 (the table names from the models, values as parameters)
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def _hour_of(span_days: float) -> int:
    return math.floor(span_days * 24)


def _median_from_hours(
    days: tuple[date, date], leave_out: list[int], live: list[float], changes: Changes
) -> float | None:
    """The median of the known spans in [low, high) (less ``leave_out``'s) and ``live``, on
    PostgreSQL: ``FirstTouchHour`` says which whole hour holds the middle span(s), and only
    that hour's spans are read (an index on the span), so a year of a million first touches
    costs a histogram and a few hundred spans, not a million. Without a state of the
    aggregates (or one in another zone) the spans are read whole, as before."""
    start, end = days
    low, high = range_moments(start, end)
    refresh = changes.refresh
    if refresh is None or refresh.time_zone != reporting_zone().key:
        return _median_in_database(low, high, leave_out, live)
    table = connection.ops.quote_name(PersonMilestone._meta.db_table)
    histogram = connection.ops.quote_name(FirstTouchHour._meta.db_table)

    def read_histogram() -> tuple[list[int], list[int]]:
        # As two arrays in one row: a year holds thousands of hours, and a row each through
        # the ORM cost more than the rest of the median.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT array_agg(hour), array_agg(people) FROM (
                    SELECT hour, sum(people) AS people FROM {histogram}
                    WHERE day >= %s AND day <= %s GROUP BY hour
                ) AS per_hour
                """,  # noqa: S608 (the table names from the models, values as parameters)
                [start, end],
            )
            hour_list, people_list = cursor.fetchone()
        return hour_list or [], people_list or []

    # The state's histogram, once per process (``reports.per_state``).
    hour_list, people_list = state_read(refresh, ("first touch hours", start, end), read_histogram)
    hours: Counter[int] = Counter(dict(zip(hour_list, people_list, strict=True)))
    known = f"""
        FROM {table}
        WHERE first_touch_at >= %s AND first_touch_at < %s AND created_at <= first_touch_at
    """
    if leave_out:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {SPAN_HOUR_SQL}, count(*) {known} "
                "AND contact_id = ANY(%s::bigint[]) GROUP BY 1",
                [low, high, leave_out],
            )
            hours.subtract(dict(cursor.fetchall()))
    hours.update(_hour_of(span) for span in live)
    total = sum(hours.values())
    if total <= 0:
        return None
    # percentile_cont(0.5): the middle span, or the two around the middle interpolated.
    wanted = sorted({(total - 1) // 2, total // 2})
    values: dict[int, float] = {}
    passed = 0
    # A year holds thousands of hours and the middle is one or two of them: an hour is
    # looked into only when it may hold a wanted position, and the walk stops past the
    # last one (unless an hour's count went below zero, when a later hour may still hold
    # one).
    may_stop = all(count >= 0 for count in hours.values())
    for hour in sorted(hours):
        count = hours[hour]
        if passed > wanted[-1] and may_stop:
            break
        if count <= 0 or passed + count <= wanted[0] or passed > wanted[-1]:
            passed += count
            continue
        inside = [position for position in wanted if passed <= position < passed + count]
        if inside:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT EXTRACT(EPOCH FROM first_touch_at - created_at) / %s {known} "  # noqa: S608
                    "AND first_touch_at - created_at >= %s * interval '1 hour' "
                    "AND first_touch_at - created_at < %s * interval '1 hour' "
                    "AND NOT (contact_id = ANY(%s::bigint[]))",
                    [SECONDS_PER_DAY, low, high, hour, hour + 1, leave_out],
                )
                spans = [float(row[0]) for row in cursor.fetchall()]
            spans += [span for span in live if _hour_of(span) == hour]
            if len(spans) != count:
                # A span on an hour's edge read differently here and in the histogram: the
                # exact answer the long way.
                return _median_in_database(low, high, leave_out, live)
            spans.sort()
            for position in inside:
                values[position] = spans[position - passed]
        passed += count
    first, second = values[wanted[0]], values[wanted[-1]]
    return first + (second - first) * 0.5


def _median_in_database(
    low: datetime, high: datetime, leave_out: list[int], live: list[float]
) -> float | None:
    """The median of every known span in [low, high) (less ``leave_out``'s) and ``live``."""
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
    with consistent_read():
        return _median_days_in_stage(start, end, known)


def _median_days_in_stage(
    start: date, end: date, known: tuple[str, ...] | None
) -> dict[str, float | None]:
    low, high = range_moments(start, end)
    changes = changes_since_refresh()
    qualifications = Qualification.objects.filter(qualified=True)
    handoffs = handoffs_visible(known)
    acceptances = handoffs.filter(status=HandoffStatus.ACCEPTED)
    # The stages' entries and the decisions in one query (each its own plan).
    qualified_rows, handoff_rows, accepted_rows, decided_rows = rows_each(
        _firsts_within_query(qualifications, "occurred_at", low, high),
        _firsts_within_query(handoffs, "occurred_at", low, high),
        _firsts_query(acceptances, "decided_at"),
        handoffs.filter(decided_at__gte=low, decided_at__lt=high)
        .values_list("occurred_at", "decided_at")
        .order_by(),
    )
    first_qualified: dict[int, datetime] = dict(qualified_rows)
    first_handoff: dict[int, datetime] = dict(handoff_rows)
    first_accepted: dict[int, datetime] = dict(accepted_rows)
    first_won = _first_wins_of(list(first_accepted), changes)
    first_touch = _first_touches(list(first_qualified))
    qualified_before = _firsts(
        qualifications.filter(contact_id__in=list(first_handoff)), "occurred_at"
    )
    decisions = [
        _days(decided - handed)
        for handed, decided in decided_rows
        if decided is not None and decided >= handed
    ]
    return {
        "contacts": _median_days_to_first_touch((start, end), changes),
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
    median days people who left a stage in the range had spent in it; and the leaks.

    One snapshot for all three (a page's own when called within one): the counts, the
    medians and the leaks agree, and the rows they each start from (the aggregates'
    state, the merges and touches since it, the ledger head) are read once."""
    with consistent_read():
        return _funnel(start, end, known)


def _funnel(start: date, end: date, known: tuple[str, ...] | None) -> Funnel:
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
    handed = handoffs_visible(known).filter(occurred_at__lt=high).values("contact_id")
    return Contact.objects.filter(id__in=qualified, merged_into__isnull=True).exclude(id__in=handed)


def handoffs_expired(
    start: date, end: date, known: tuple[str, ...] | None = None
) -> QuerySet[Contact]:
    """People whose handoff expired (SLA breached) in the range."""
    low, high = range_moments(start, end)
    ids = (
        handoffs_visible(known)
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
    later_handoff = handoffs_visible(known).filter(
        contact_id=OuterRef("contact_id"),
        occurred_at__gt=OuterRef("decided_at"),
        occurred_at__lt=high,
    )
    ids = (
        handoffs_visible(known)
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
    # short list: for a range ending today, none). Read as ids rather than a subquery: an
    # OR with a subquery is planned as a scan of every deal, while the open deals by age
    # (an index) or these ids (the primary key) read only the candidates.
    closed_after = set(
        SaleEvent.objects.filter(occurred_at__gte=high).values_list("deal_id", flat=True).order_by()
    )
    return (
        Deal.objects.filter(occurred_at__lte=high - timedelta(days=STALLED_AFTER_DAYS))
        .filter(Q(state=DealState.OPEN) | Q(id__in=sorted(closed_after)))
        .exclude(Exists(events_by_then))
    )


class LeakQuery(Protocol):
    """The range, and the reader's ``known`` handoff audiences (see ``handoffs_visible``)."""

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
    # The leaks counted in one query (each is a small count on its own index).
    counts = count_each(*(LEAK_QUERIES[key](start, end, known) for key, _ in LEAKS))
    return [
        Leak(key=key, label=label, count=count, url=leak_url(key, start, end))
        for (key, label), count in zip(LEAKS, counts, strict=True)
    ]
