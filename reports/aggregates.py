"""The aggregates behind the people counts: kept up to date from the ledger, rebuilt on request.

Counting "people with a touch from s to e" straight from millions of touches costs a scan
per request. ``TouchDay`` (one row per person and day with a touch, with the person's
previous such day) answers it exactly; ``TouchDayCount`` (the same counted per day and
previous day, cumulatively) answers it with one index probe per day on PostgreSQL.
``PersonMilestone`` (one row per person: created, first touch, first won) and
``CreatedDayCount`` answer "contacts created by e" and the times in the first and last
stages.

Each state of the aggregates is a ``PeopleRefresh`` row: the ledger seq it is as of
(``ledger_mark``) and the last touch, contact, sale event and deal member it includes.
``people_aggregates_update`` (a periodic job, ``reports.tasks``) brings them forward: the
ledger entries after the mark name every person whose rows may have changed (a touch, a
new person, a merge, a deal member, a won sale), and only those people's rows are worked
out again, from the record, with the cumulative counts moved by the difference. The
ledger is appended under one lock held to commit, so its seqs commit in order and "the
entries after the mark" misses nothing. ``people_aggregates_refresh`` rebuilds them all
(``manage.py rebuild_people_aggregates``, and the first update on a database that has
none).

Either writes in one transaction, so a reader sees the state before it or after it; a
reader takes its own queries from one snapshot (``consistent_read``), so it never pairs
one state's marks with another's rows. ``reports.metrics_people`` counts the rows written
since the marks, and the people merged since, live on top, so the numbers are exact at any
moment. (The one gap: a row whose transaction was still open while an update read, yet got
a lower id than the last one read, waits for the next update.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from contacts.models import Contact, Touch
from handoff.models import Deal, DealContact, SaleEvent, SaleKind
from leadrecord.ledger import ledger_head_seq
from leadrecord.models import LedgerAction, LedgerEntry

from .change_counts import change_count_record
from .models import (
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    FirstTouchHour,
    PeopleRefresh,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)
from .rollups import (
    SalesMarks,
    sales_days_changed,
    sales_rollup_write,
    uncredited_sales_record,
)

# Any fixed 64-bit number names the advisory lock; this one spells "PEOPLE".
_UPDATE_LOCK_KEY = 0x50454F504C45
# The ledger actions that name a person whose aggregate rows may change (a won sale names
# a deal: its members are looked up).
PERSON_ACTIONS = (
    LedgerAction.TOUCH_RECORD,
    LedgerAction.CONTACT_CREATE,
    LedgerAction.CONTACT_MERGE,
    LedgerAction.CONTACT_ERASE,
    LedgerAction.DEAL_MEMBER_ADD,
)


_AGGREGATES = (
    TouchDay,
    TouchDayCount,
    PersonMilestone,
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    FirstTouchHour,
)


@contextmanager
def consistent_read() -> Iterator[None]:
    """Run the caller's queries on one snapshot of the database.

    PostgreSQL gives each statement its own snapshot outside a transaction, so a reader
    could take one state's marks and the next state's rows; a read-only REPEATABLE READ
    transaction reads them all as of its first query. Inside a caller's transaction (whose
    isolation is already set) and on SQLite (a transaction reads one snapshot) it is a
    plain transaction."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@dataclass(frozen=True)
class Marks:
    """What a state of the aggregates includes: rows up to these ids, ledger up to this seq."""

    ledger_mark: int
    last_touch_id: int
    last_contact_id: int
    last_sale_event_id: int
    last_deal_member_id: int
    last_deal_id: int

    @property
    def sales(self) -> SalesMarks:
        return SalesMarks(self.ledger_mark, self.last_deal_id, self.last_sale_event_id)


def _marks_now() -> Marks:
    # The ledger head first: every row whose entry is at or before it is committed, so the
    # ids read next are at least its rows' ids.
    head = ledger_head_seq()
    return Marks(
        ledger_mark=head,
        last_touch_id=Touch.objects.aggregate(last=Max("id"))["last"] or 0,
        last_contact_id=Contact.objects.aggregate(last=Max("id"))["last"] or 0,
        last_sale_event_id=SaleEvent.objects.aggregate(last=Max("id"))["last"] or 0,
        last_deal_member_id=DealContact.objects.aggregate(last=Max("id"))["last"] or 0,
        last_deal_id=Deal.objects.aggregate(last=Max("id"))["last"] or 0,
    )


@contextmanager
def _writing(*, wait: bool) -> Iterator[bool]:
    """A transaction holding the update lock; yields whether it got it (without ``wait``,
    another update in progress means this one has nothing to do).

    Each statement reads what is committed when it runs (READ COMMITTED): the rows are
    bounded by the marks read first, and a row committed in between with an id under
    them is simply worked out again by the next update."""
    with transaction.atomic():
        if connection.vendor != "postgresql":
            # SQLite: IMMEDIATE transactions (settings) already hold the one write lock.
            yield True
            return
        with connection.cursor() as cursor:
            if wait:
                cursor.execute("SELECT pg_advisory_xact_lock(%s), true", [_UPDATE_LOCK_KEY])
            else:
                cursor.execute("SELECT 0, pg_try_advisory_xact_lock(%s)", [_UPDATE_LOCK_KEY])
            yield bool(cursor.fetchone()[1])


def people_aggregates_refresh() -> PeopleRefresh:
    """Rebuild the people aggregates from the record, atomically: readers see the previous
    ones until this transaction commits."""
    with _writing(wait=True):
        # Taken before reading, so a merge committed during the rebuild counts as "since".
        refreshed_at = timezone.now()
        marks = _marks_now()
        for model in _AGGREGATES:
            model.objects.all().delete()
        # PostgreSQL: one set-based rebuild, which bench/report_latency.py's record of
        # ten million touches needs; elsewhere (the embedded SQLite default) the Python
        # rebuild writes the same rows.
        if connection.vendor == "postgresql":
            _rebuild_sql(marks)
        else:
            created = _people_python(marks, None)
            _created_counts_apply(created)
        sales_rollup_write(marks.sales, None)
        uncredited_sales_record()
        return _state_record(refreshed_at, marks)


def people_refresh_latest() -> PeopleRefresh | None:
    return PeopleRefresh.objects.order_by("-id").first()


def people_aggregates_update() -> PeopleRefresh | None:
    """Bring the people aggregates up to the ledger's head: the people named by the entries
    after the latest state's mark are worked out again. Safe to run twice, or at once from
    two processes (the second finds the lock taken and returns None). The first update on a
    database whose aggregates have no ledger mark rebuilds them whole."""
    latest = people_refresh_latest()
    if latest is None or latest.ledger_mark is None or latest.time_zone != settings.TIME_ZONE:
        # None yet, from before marks were kept, or with days in another zone.
        return people_aggregates_refresh()
    with _writing(wait=False) as locked:
        if not locked:
            return None
        latest = people_refresh_latest()
        if latest is None or latest.ledger_mark is None:
            return None  # a rebuild is under way elsewhere; the next update goes on from it
        refreshed_at = timezone.now()
        marks = _marks_now()
        if marks.ledger_mark <= latest.ledger_mark and marks == _marks_of(latest):
            uncredited_sales_record()  # a run may have completed with nothing else new
            change_count_record(marks.ledger_mark)  # a state from before the notes were kept
            return latest
        people = people_changed_between(_marks_of(latest), marks)
        if people:
            if connection.vendor == "postgresql":
                _people_sql(marks, people)
            else:
                _created_counts_apply(_people_python(marks, people))
        sales_rollup_write(marks.sales, sales_days_changed(_marks_of(latest).sales, marks.sales))
        uncredited_sales_record()
        return _state_record(refreshed_at, marks)


def _marks_of(refresh: PeopleRefresh) -> Marks:
    return Marks(
        ledger_mark=refresh.ledger_mark or 0,
        last_touch_id=refresh.last_touch_id,
        last_contact_id=refresh.last_contact_id,
        last_sale_event_id=refresh.last_sale_event_id,
        last_deal_member_id=refresh.last_deal_member_id,
        last_deal_id=refresh.last_deal_id,
    )


def people_changed_between(before: Marks, after: Marks) -> list[int]:
    """The people whose aggregate rows may differ between two states, sorted: those the
    ledger entries between the two marks name, and those of the rows written between the
    two sets of ids (a row put in without the ledger, as a bulk load does, included)."""
    entries = LedgerEntry.objects.filter(seq__gt=before.ledger_mark, seq__lte=after.ledger_mark)
    people: set[int] = {
        contact_id
        for contact_id in entries.filter(action__in=PERSON_ACTIONS).values_list(
            "contact_id", flat=True
        )
        if contact_id is not None
    }
    won_deals = {
        int(deal)
        for deal, after_values in entries.filter(action=LedgerAction.SALE_RECORD).values_list(
            "subject_id", "after"
        )
        if isinstance(after_values, dict) and after_values.get("kind") == SaleKind.WON
    }
    won_deals.update(
        SaleEvent.objects.filter(
            kind=SaleKind.WON,
            id__gt=before.last_sale_event_id,
            id__lte=after.last_sale_event_id,
        ).values_list("deal_id", flat=True)
    )
    if won_deals:
        people.update(
            DealContact.objects.filter(deal_id__in=won_deals).values_list("contact_id", flat=True)
        )
    people.update(
        Touch.objects.filter(id__gt=before.last_touch_id, id__lte=after.last_touch_id)
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by()
    )
    people.update(
        Contact.objects.filter(
            id__gt=before.last_contact_id, id__lte=after.last_contact_id
        ).values_list("id", flat=True)
    )
    people.update(
        DealContact.objects.filter(
            id__gt=before.last_deal_member_id, id__lte=after.last_deal_member_id
        ).values_list("contact_id", flat=True)
    )
    return sorted(people)


def _state_record(refreshed_at: datetime, marks: Marks) -> PeopleRefresh:
    bounds = TouchDay.objects.aggregate(first=Min("day"), last=Max("day"))
    state = PeopleRefresh.objects.create(
        refreshed_at=refreshed_at,
        ledger_mark=marks.ledger_mark,
        last_touch_id=marks.last_touch_id,
        last_contact_id=marks.last_contact_id,
        last_sale_event_id=marks.last_sale_event_id,
        last_deal_member_id=marks.last_deal_member_id,
        last_deal_id=marks.last_deal_id,
        time_zone=settings.TIME_ZONE,
        first_touch_day=bounds["first"],
        last_touch_day=bounds["last"],
        touch_days=TouchDay.objects.count(),
        people=PersonMilestone.objects.count(),
    )
    # Superseded states are of no use: readers take the latest (one still reading an older
    # one keeps its snapshot).
    PeopleRefresh.objects.filter(id__lt=state.pk).delete()
    change_count_record(marks.ledger_mark)
    return state


# --- PostgreSQL: set-based, whole or for the people changed ----------------------------------


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {
        "touch": quote(Touch._meta.db_table),
        "contact": quote(Contact._meta.db_table),
        "sale": quote(SaleEvent._meta.db_table),
        "member": quote(DealContact._meta.db_table),
        "touch_day": quote(TouchDay._meta.db_table),
        "touch_day_count": quote(TouchDayCount._meta.db_table),
        "milestone": quote(PersonMilestone._meta.db_table),
        "created_day_count": quote(CreatedDayCount._meta.db_table),
        "customer_day": quote(CustomerDay._meta.db_table),
        "first_touch_hour": quote(FirstTouchHour._meta.db_table),
        "customer_day_count": quote(CustomerDayCount._meta.db_table),
    }


# Each person's touch days with the day before each, for the people given (or everyone).
_TOUCH_DAYS_SQL = """
    SELECT contact_id, day, lag(day) OVER (PARTITION BY contact_id ORDER BY day)
    FROM (
        SELECT DISTINCT contact_id, (occurred_at AT TIME ZONE %s)::date AS day
        FROM {touch} WHERE id <= %s {only_touch}
    ) AS days
"""
# Each person's days with a deal of theirs won, with the day before each (people given, or all).
_CUSTOMER_DAYS_SQL = """
    SELECT contact_id, day, lag(day) OVER (PARTITION BY contact_id ORDER BY day)
    FROM (
        SELECT DISTINCT member.contact_id, (sale.occurred_at AT TIME ZONE %s)::date AS day
        FROM {member} AS member JOIN {sale} AS sale ON sale.deal_id = member.deal_id
        WHERE sale.kind = %s AND sale.id <= %s AND member.id <= %s {only_member}
    ) AS days
"""
# Cumulative counts per (day, previous day) of a table of days, from scratch.
_DAY_COUNTS_SQL = """
    INSERT INTO {counts} (day, previous_day, people)
    SELECT day, previous_day, sum(n) OVER (PARTITION BY day ORDER BY previous_day)
    FROM (
        SELECT day, coalesce(previous_day, %s) AS previous_day, count(*) AS n
        FROM {days} GROUP BY 1, 2
    ) AS pairs
"""
# The whole hours from a person's creation to their first touch (``FirstTouchHour``).
SPAN_HOUR_SQL = "floor(EXTRACT(EPOCH FROM (first_touch_at - created_at)) / 3600)::integer"
# What a milestone row counts in: its creation day, and its first touch's day and hour.
_MILESTONE_DAYS = f"""
    (created_at AT TIME ZONE %s)::date AS day,
    (first_touch_at AT TIME ZONE %s)::date AS touch_day,
    CASE WHEN first_touch_at IS NOT NULL AND created_at <= first_touch_at
        THEN {SPAN_HOUR_SQL} END AS hour
"""
# Each person's milestones, for the people given (or everyone).
_MILESTONES_SQL = """
    SELECT person.id, person.created_at, touches.first_at, wins.first_at
    FROM {contact} AS person
    LEFT JOIN (
        SELECT contact_id, min(occurred_at) AS first_at
        FROM {touch} WHERE id <= %s {only_touch} GROUP BY contact_id
    ) AS touches ON touches.contact_id = person.id
    LEFT JOIN (
        SELECT member.contact_id, min(sale.occurred_at) AS first_at
        FROM {member} AS member JOIN {sale} AS sale ON sale.deal_id = member.deal_id
        WHERE sale.kind = %s AND sale.id <= %s AND member.id <= %s {only_member}
        GROUP BY member.contact_id
    ) AS wins ON wins.contact_id = person.id
    WHERE person.merged_into_id IS NULL AND person.id <= %s {only_person}
"""


def _customer_params(marks: Marks) -> list[int | str]:
    return [SaleKind.WON, marks.last_sale_event_id, marks.last_deal_member_id]


def _milestone_params(marks: Marks) -> list[int | str]:
    return [
        marks.last_touch_id,
        SaleKind.WON,
        marks.last_sale_event_id,
        marks.last_deal_member_id,
        marks.last_contact_id,
    ]


def _rebuild_sql(marks: Marks) -> None:
    tables = _tables()
    everyone = {"only_touch": "", "only_member": "", "only_person": ""}
    # Table names come from the models, values go as parameters (hence the noqa: S608).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {tables['touch_day']} (contact_id, day, previous_day)"
            + _TOUCH_DAYS_SQL.format(**tables, **everyone),
            [settings.TIME_ZONE, marks.last_touch_id],
        )
        cursor.execute(
            f"INSERT INTO {tables['customer_day']} (contact_id, day, previous_day)"
            + _CUSTOMER_DAYS_SQL.format(**tables, **everyone),
            [settings.TIME_ZONE, *_customer_params(marks)],
        )
        for days, counts in (
            ("touch_day", "touch_day_count"),
            ("customer_day", "customer_day_count"),
        ):
            cursor.execute(
                _DAY_COUNTS_SQL.format(days=tables[days], counts=tables[counts]),
                [TouchDayCount.FIRST_EVER],
            )
        cursor.execute(
            f"INSERT INTO {tables['milestone']}"
            " (contact_id, created_at, first_touch_at, first_won_at)"
            + _MILESTONES_SQL.format(**tables, **everyone),
            _milestone_params(marks),
        )
        cursor.execute(
            f"""
            INSERT INTO {tables["created_day_count"]} (day, people)
            SELECT day, sum(n) OVER (ORDER BY day)
            FROM (
                SELECT (created_at AT TIME ZONE %s)::date AS day, count(*) AS n
                FROM {tables["milestone"]} GROUP BY 1
            ) AS days
            """,  # noqa: S608
            [settings.TIME_ZONE],
        )
        cursor.execute(
            f"""
            INSERT INTO {tables["first_touch_hour"]} (day, hour, people)
            SELECT (first_touch_at AT TIME ZONE %s)::date, {SPAN_HOUR_SQL}, count(*)
            FROM {tables["milestone"]}
            WHERE first_touch_at IS NOT NULL AND created_at <= first_touch_at
            GROUP BY 1, 2
            """,  # noqa: S608
            [settings.TIME_ZONE],
        )
        # Fresh statistics, so the planner takes the indexes for narrow ranges at once.
        # Only an owner may ANALYZE, and the application's role owns no table: a
        # function of the owner's does it (migration 0004).
        cursor.execute("SELECT reports_people_aggregates_analyze()")


def _people_sql(marks: Marks, people: list[int]) -> None:
    """Work out these people's rows again and move the cumulative counts by the difference."""
    tables = _tables()
    only = {
        "only_touch": "AND contact_id = ANY(%s::bigint[])",
        "only_member": "AND member.contact_id = ANY(%s::bigint[])",
        "only_person": "AND person.id = ANY(%s::bigint[])",
    }
    zone = settings.TIME_ZONE
    created: Counter[date] = Counter()
    hours: Counter[tuple[date, int]] = Counter()
    with connection.cursor() as cursor:
        pairs = _person_days_rewrite(
            cursor,
            table=tables["touch_day"],
            rows_sql=_TOUCH_DAYS_SQL.format(**tables, **only),
            rows_params=[zone, marks.last_touch_id, people],
            people=people,
            first_ever=TouchDayCount.FIRST_EVER,
        )
        cursor.execute(
            f"""
            WITH gone AS (
                DELETE FROM {tables["milestone"]} WHERE contact_id = ANY(%s::bigint[])
                RETURNING {_MILESTONE_DAYS}
            )
            SELECT day, touch_day, hour, count(*) FROM gone GROUP BY 1, 2, 3
            """,  # noqa: S608
            [people, zone, zone],
        )
        for day, touch_day, hour, count in cursor.fetchall():
            created[day] -= count
            if hour is not None:
                hours[(touch_day, hour)] -= count
        params = _milestone_params(marks)
        cursor.execute(
            f"""
            WITH added AS (
                INSERT INTO {tables["milestone"]}
                    (contact_id, created_at, first_touch_at, first_won_at)
                {_MILESTONES_SQL.format(**tables, **only)}
                RETURNING {_MILESTONE_DAYS}
            )
            SELECT day, touch_day, hour, count(*) FROM added GROUP BY 1, 2, 3
            """,  # noqa: S608
            [params[0], people, *params[1:4], people, params[4], people, zone, zone],
        )
        for day, touch_day, hour, count in cursor.fetchall():
            created[day] += count
            if hour is not None:
                hours[(touch_day, hour)] += count
    _first_touch_hours_apply(hours)
    _day_counts_apply(TouchDayCount, pairs)
    _day_counts_apply(CustomerDayCount, _customer_days_sql(marks, people))
    _created_counts_apply(created)


def _customer_days_sql(marks: Marks, people: list[int]) -> Counter[tuple[date, date]]:
    """Write these people's ``CustomerDay`` rows afresh; the change per (day, previous day)."""
    tables = _tables()
    only = {"only_member": "AND member.contact_id = ANY(%s::bigint[])"}
    with connection.cursor() as cursor:
        return _person_days_rewrite(
            cursor,
            table=tables["customer_day"],
            rows_sql=_CUSTOMER_DAYS_SQL.format(**tables, **only),
            rows_params=[settings.TIME_ZONE, *_customer_params(marks), people],
            people=people,
            first_ever=CustomerDayCount.FIRST_EVER,
        )


def _person_days_rewrite(
    cursor: Any,
    *,
    table: str,
    rows_sql: str,
    rows_params: list[Any],
    people: list[int],
    first_ever: date,
) -> Counter[tuple[date, date]]:
    """Replace these people's rows of a (contact, day, previous day) table by ``rows_sql``'s;
    the change in rows per (day, previous day), a first day counted under ``first_ever``."""
    pairs: Counter[tuple[date, date]] = Counter()
    cursor.execute(
        f"""
        WITH gone AS (
            DELETE FROM {table} WHERE contact_id = ANY(%s::bigint[])
            RETURNING day, coalesce(previous_day, %s) AS previous_day
        )
        SELECT day, previous_day, count(*) FROM gone GROUP BY 1, 2
        """,  # noqa: S608
        [people, first_ever],
    )
    for day, previous, count in cursor.fetchall():
        pairs[(day, previous)] -= count
    cursor.execute(
        f"""
        WITH added AS (
            INSERT INTO {table} (contact_id, day, previous_day)
            {rows_sql}
            RETURNING day, coalesce(previous_day, %s) AS previous_day
        )
        SELECT day, previous_day, count(*) FROM added GROUP BY 1, 2
        """,  # noqa: S608
        [*rows_params, first_ever],
    )
    for day, previous, count in cursor.fetchall():
        pairs[(day, previous)] += count
    return pairs


def _day_counts_apply(
    model: type[TouchDayCount] | type[CustomerDayCount], deltas: Counter[tuple[date, date]]
) -> None:
    """Move ``TouchDayCount`` by the change in ``TouchDay`` rows per (day, previous day)
    (or ``CustomerDayCount`` by ``CustomerDay``'s).

    Each row holds the people of its day whose previous day is at or before its own, so a
    change at (d, p) moves every row of d from p on. A key not there yet starts from the
    row before it; rows left equal to the one before them (or zero, first in their day)
    go, so the table is exactly what a rebuild writes."""
    changed = [(key, delta) for key, delta in sorted(deltas.items()) if delta]
    if not changed:
        return
    days = [day for (day, _), _ in changed]
    previous = [prev for (_, prev), _ in changed]
    amounts = [delta for _, delta in changed]
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (day, previous_day, people)
            SELECT k.day, k.previous_day, coalesce((
                SELECT people FROM {table} AS t
                WHERE t.day = k.day AND t.previous_day < k.previous_day
                ORDER BY t.previous_day DESC LIMIT 1
            ), 0)
            FROM unnest(%s::date[], %s::date[]) AS k(day, previous_day)
            ON CONFLICT (day, previous_day) DO NOTHING
            """,  # noqa: S608
            [days, previous],
        )
        cursor.execute(
            f"""
            UPDATE {table} AS t SET people = t.people + moved.delta
            FROM (
                SELECT cell.id, sum(k.delta) AS delta
                FROM {table} AS cell
                JOIN unnest(%s::date[], %s::date[], %s::integer[]) AS k(day, previous_day, delta)
                    ON cell.day = k.day AND cell.previous_day >= k.previous_day
                GROUP BY cell.id
            ) AS moved
            WHERE t.id = moved.id
            """,  # noqa: S608
            [days, previous, amounts],
        )
        cursor.execute(
            f"""
            DELETE FROM {table} AS t
            WHERE t.day = ANY(%s::date[]) AND t.people = coalesce((
                SELECT p.people FROM {table} AS p
                WHERE p.day = t.day AND p.previous_day < t.previous_day
                ORDER BY p.previous_day DESC LIMIT 1
            ), 0)
            """,  # noqa: S608
            [sorted(set(days))],
        )


def _first_touch_hours_apply(deltas: Counter[tuple[date, int]]) -> None:
    """Move ``FirstTouchHour`` by the change in people per (first touch day, hour)."""
    changed = [(key, delta) for key, delta in sorted(deltas.items()) if delta]
    if not changed:
        return
    days = [day for (day, _), _ in changed]
    hours = [hour for (_, hour), _ in changed]
    amounts = [delta for _, delta in changed]
    table = connection.ops.quote_name(FirstTouchHour._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS t SET people = t.people + k.delta
            FROM unnest(%s::date[], %s::integer[], %s::integer[]) AS k(day, hour, delta)
            WHERE t.day = k.day AND t.hour = k.hour
            """,  # noqa: S608
            [days, hours, amounts],
        )
        cursor.execute(
            f"""
            INSERT INTO {table} (day, hour, people)
            SELECT k.day, k.hour, k.delta
            FROM unnest(%s::date[], %s::integer[], %s::integer[]) AS k(day, hour, delta)
            WHERE k.delta > 0
            ON CONFLICT (day, hour) DO NOTHING
            """,  # noqa: S608
            [days, hours, amounts],
        )
        cursor.execute(
            f"""
            DELETE FROM {table} AS t
            USING unnest(%s::date[], %s::integer[]) AS k(day, hour)
            WHERE t.day = k.day AND t.hour = k.hour AND t.people = 0
            """,  # noqa: S608
            [days, hours],
        )


def _created_counts_apply(deltas: Counter[date]) -> None:
    """Move ``CreatedDayCount`` (people created on or before each day) by the change in
    people created per day: the days from the earliest change on are read and rewritten
    (one row per day with anyone created, a few hundred a year)."""
    changed = {day: delta for day, delta in deltas.items() if delta}
    if not changed:
        return
    first = min(changed)
    before = (
        CreatedDayCount.objects.filter(day__lt=first)
        .order_by("-day")
        .values_list("people", flat=True)
        .first()
    ) or 0
    rows = dict(
        CreatedDayCount.objects.filter(day__gte=first).order_by("day").values_list("day", "people")
    )
    per_day: Counter[date] = Counter()
    running = before
    for day, people in rows.items():
        per_day[day] = people - running
        running = people
    per_day.update(changed)
    wanted: dict[date, int] = {}
    running = before
    for day in sorted(per_day):
        if per_day[day]:
            running += per_day[day]
            wanted[day] = running
    CreatedDayCount.objects.filter(day__in=[day for day in rows if day not in wanted]).delete()
    for day, people in wanted.items():
        if rows.get(day) != people:
            CreatedDayCount.objects.update_or_create(day=day, defaults={"people": people})


# --- elsewhere (the embedded SQLite default): the same rows, worked out in Python -------------


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


DayRow = TypeVar("DayRow", TouchDay, CustomerDay)


def _day_rows(model: type[DayRow], days: dict[int, set[date]]) -> list[DayRow]:
    """Each person's days in order, each with the one before."""
    rows: list[DayRow] = []
    for contact_id, person_days in days.items():
        previous = None
        for day in sorted(person_days):
            rows.append(model(contact_id=contact_id, day=day, previous_day=previous))
            previous = day
    return rows


def _people_python(marks: Marks, people: list[int] | None) -> Counter[date]:
    """Write ``TouchDay`` and ``PersonMilestone`` for these people (None: everyone) afresh,
    returning the change in people created per day. SQLite has no time zones in SQL;
    ``TouchDayCount`` stays empty there (counts read ``TouchDay``)."""
    zone = ZoneInfo(settings.TIME_ZONE)

    def only(rows: Iterable[int] | None, field: str) -> dict[str, object]:
        return {} if rows is None else {f"{field}__in": rows}

    created: Counter[date] = Counter()
    if people is not None:
        TouchDay.objects.filter(contact_id__in=people).delete()
        CustomerDay.objects.filter(contact_id__in=people).delete()
        for moment in PersonMilestone.objects.filter(contact_id__in=people).values_list(
            "created_at", flat=True
        ):
            created[_local_day(moment, zone)] -= 1
        PersonMilestone.objects.filter(contact_id__in=people).delete()
    days: dict[int, set[date]] = {}
    first_touch: dict[int, datetime] = {}
    for contact_id, moment in Touch.objects.filter(
        id__lte=marks.last_touch_id, **only(people, "contact_id")
    ).values_list("contact_id", "occurred_at"):
        days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in first_touch or moment < first_touch[contact_id]:
            first_touch[contact_id] = moment
    TouchDay.objects.bulk_create(_day_rows(TouchDay, days), batch_size=1000)
    won_at = dict(
        SaleEvent.objects.filter(kind=SaleKind.WON, id__lte=marks.last_sale_event_id).values_list(
            "deal_id", "occurred_at"
        )
    )
    first_won: dict[int, datetime] = {}
    won_days: dict[int, set[date]] = {}
    for contact_id, deal_id in DealContact.objects.filter(
        id__lte=marks.last_deal_member_id, deal_id__in=list(won_at), **only(people, "contact_id")
    ).values_list("contact_id", "deal_id"):
        moment = won_at[deal_id]
        won_days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in first_won or moment < first_won[contact_id]:
            first_won[contact_id] = moment
    CustomerDay.objects.bulk_create(_day_rows(CustomerDay, won_days), batch_size=1000)
    persons = list(
        Contact.objects.filter(
            merged_into__isnull=True, id__lte=marks.last_contact_id, **only(people, "id")
        ).values_list("id", "created_at")
    )
    PersonMilestone.objects.bulk_create(
        [
            PersonMilestone(
                contact_id=contact_id,
                created_at=created_at,
                first_touch_at=first_touch.get(contact_id),
                first_won_at=first_won.get(contact_id),
            )
            for contact_id, created_at in persons
        ],
        batch_size=1000,
    )
    for _, created_at in persons:
        created[_local_day(created_at, zone)] += 1
    return created
