"""The people aggregates' writes on PostgreSQL: set-based, whole or for the people changed.

``reports.aggregates`` decides what to write and when; this module says how, in SQL. The
embedded SQLite default writes the same rows in Python (``reports.aggregates``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection

from contacts.models import Contact, Touch
from handoff.models import DealContact, SaleEvent, SaleKind

from .models import (
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    FirstTouchHour,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)

if TYPE_CHECKING:
    from .aggregates import Marks


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


def rebuild_sql(marks: Marks) -> None:
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


@dataclass(frozen=True)
class Written:
    """What ``people_sql`` changed: people created per day (``CreatedDayCount``'s change,
    the caller's to apply) and the number of ``TouchDay`` rows."""

    created: Counter[date]
    touch_days: int


def people_sql(marks: Marks, people: list[int]) -> Written:
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
    return Written(created, sum(pairs.values()))


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


# --- people whose only change is new touches ---------------------------------------------

# The new touches of the people given: those written after the earlier state's touch mark,
# and those its marks could not see (committed late, with a lower id) that the ledger names.
_NEW_TOUCHES_SQL = """
    SELECT contact_id, occurred_at FROM {touch}
    WHERE ((id > %s AND id <= %s) OR id = ANY(%s::bigint[])) AND contact_id = ANY(%s::bigint[])
"""


def touches_added_sql(
    marks: Marks, *, since_touch_id: int, late_touch_ids: list[int], people: list[int]
) -> int:
    """Add these people's new touches to the aggregates without working them out again.

    For people whose only change is touches added (none moved away by a merge or
    erasure), a new touch day is a row to insert, with the day before it among the
    person's days old and new, and the person's next old day (if any) takes the latest
    new day before it as its previous day: the rows a rewrite would write, touching
    only those. The first touch moves only if a new one is earlier. Returns the change
    in ``TouchDay`` rows (for the state's count)."""
    tables = _tables()
    zone = settings.TIME_ZONE
    new_touches = _NEW_TOUCHES_SQL.format(**tables)
    touch_params: list[Any] = [since_touch_id, marks.last_touch_id, late_touch_ids, people]
    pairs: Counter[tuple[date, date]] = Counter()
    first_ever = TouchDayCount.FIRST_EVER
    with connection.cursor() as cursor:
        # Each new day of a person, with the latest day before it among the new days and
        # among the old ones, and the old day after it.
        cursor.execute(
            f"""
            WITH fresh AS (
                SELECT DISTINCT contact_id, (occurred_at AT TIME ZONE %s)::date AS day
                FROM ({new_touches}) AS touched
            )
            SELECT f.contact_id, f.day,
                greatest(
                    lag(f.day) OVER (PARTITION BY f.contact_id ORDER BY f.day),
                    (SELECT max(d.day) FROM {tables["touch_day"]} AS d
                     WHERE d.contact_id = f.contact_id AND d.day < f.day)
                ),
                (SELECT min(d.day) FROM {tables["touch_day"]} AS d
                 WHERE d.contact_id = f.contact_id AND d.day > f.day)
            FROM fresh AS f
            WHERE NOT EXISTS (
                SELECT 1 FROM {tables["touch_day"]} AS d
                WHERE d.contact_id = f.contact_id AND d.day = f.day
            )
            """,  # noqa: S608 (table names from the models, values as parameters)
            [zone, *touch_params],
        )
        placed = cursor.fetchall()
        # An old day's new previous day: the latest new day between it and its old one.
        follows: dict[tuple[int, date], date] = {}
        for contact_id, day, _, after in placed:
            if after is not None:
                key = (contact_id, after)
                follows[key] = max(day, follows.get(key, day))
        if placed:
            cursor.execute(
                f"""
                INSERT INTO {tables["touch_day"]} (contact_id, day, previous_day)
                SELECT * FROM unnest(%s::bigint[], %s::date[], %s::date[])
                """,  # noqa: S608
                [
                    [row[0] for row in placed],
                    [row[1] for row in placed],
                    [row[2] for row in placed],
                ],
            )
            for _, day, previous, _ in placed:
                pairs[(day, previous or first_ever)] += 1
        if follows:
            cursor.execute(
                f"""
                UPDATE {tables["touch_day"]} AS t SET previous_day = moved.previous_day
                FROM (
                    SELECT old.id, old.previous_day AS was, k.previous_day
                    FROM {tables["touch_day"]} AS old
                    JOIN unnest(%s::bigint[], %s::date[], %s::date[])
                        AS k(contact_id, day, previous_day)
                        ON old.contact_id = k.contact_id AND old.day = k.day
                ) AS moved
                WHERE t.id = moved.id
                RETURNING t.day, moved.was, moved.previous_day
                """,  # noqa: S608
                [
                    [contact_id for contact_id, _ in follows],
                    [day for _, day in follows],
                    list(follows.values()),
                ],
            )
            for day, was, previous in cursor.fetchall():
                pairs[(day, was or first_ever)] -= 1
                pairs[(day, previous)] += 1
        # First touches: moved only where a new touch is earlier (or the first).
        cursor.execute(
            f"""
            WITH touched AS (
                SELECT contact_id, min(occurred_at) AS first_at
                FROM ({new_touches}) AS touched GROUP BY contact_id
            ), earlier AS (
                SELECT m.contact_id, m.created_at, m.first_touch_at, touched.first_at
                FROM {tables["milestone"]} AS m JOIN touched USING (contact_id)
                WHERE m.first_touch_at IS NULL OR touched.first_at < m.first_touch_at
            ), moved AS (
                UPDATE {tables["milestone"]} AS m SET first_touch_at = earlier.first_at
                FROM earlier WHERE m.contact_id = earlier.contact_id
                RETURNING m.created_at, m.first_touch_at
            )
            SELECT -1, hours.* FROM (SELECT {_MILESTONE_DAYS} FROM earlier) AS hours
            UNION ALL
            SELECT 1, hours.* FROM (SELECT {_MILESTONE_DAYS} FROM moved) AS hours
            """,  # noqa: S608
            [*touch_params, zone, zone, zone, zone],
        )
        hours: Counter[tuple[date, int]] = Counter()
        for sign, _, touch_day, hour in cursor.fetchall():
            if hour is not None:
                hours[(touch_day, hour)] += sign
    _first_touch_hours_apply(hours)
    _day_counts_apply(TouchDayCount, pairs)
    return len(placed)


def people_with_milestones(people: list[int]) -> set[int]:
    """Which of these people the aggregates know (have a ``PersonMilestone`` row)."""
    return set(
        PersonMilestone.objects.filter(contact_id__in=people).values_list("contact_id", flat=True)
    )
