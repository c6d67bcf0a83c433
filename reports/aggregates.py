"""The aggregates behind the people counts: rebuilt whole, set-based, by the nightly run.

Counting "people with a touch from s to e" straight from a million touches costs a scan
per request. ``TouchDay`` (one row per person and day with a touch, with the person's
previous such day) answers it exactly; ``TouchDayCount`` (the same counted per day and
previous day, cumulatively) answers it with one index probe per day on PostgreSQL.
``PersonMilestone`` (one row per person: created, first touch, first won) and
``CreatedDayCount`` answer "contacts created by e" and the times in the first and last
stages.

The rebuild notes the last touch, contact, sale event and deal member it includes;
``reports.metrics`` counts the rows written since, and the people merged since, live on
top, so the numbers are exact at any moment, not as of last night. (The one gap: a row
whose transaction was still open while the rebuild read, yet got a lower id than the
last one read, waits for the next rebuild.)
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from contacts.models import Contact, Touch
from handoff.models import DealContact, SaleEvent, SaleKind

from .models import (
    CreatedDayCount,
    PeopleRefresh,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)


def people_aggregates_refresh() -> PeopleRefresh:
    """Rebuild the people aggregates from the record, atomically: readers see the previous
    ones until this transaction commits."""
    with transaction.atomic():
        # Taken before reading, so a merge committed during the rebuild counts as "since".
        refreshed_at = timezone.now()
        marks = {
            "last_touch_id": Touch.objects.aggregate(last=Max("id"))["last"] or 0,
            "last_contact_id": Contact.objects.aggregate(last=Max("id"))["last"] or 0,
            "last_sale_event_id": SaleEvent.objects.aggregate(last=Max("id"))["last"] or 0,
            "last_deal_member_id": DealContact.objects.aggregate(last=Max("id"))["last"] or 0,
        }
        for model in (TouchDay, TouchDayCount, PersonMilestone, CreatedDayCount):
            model.objects.all().delete()
        # PostgreSQL: one set-based rebuild, which the full run bench/attribution.py
        # times needs over a million touches; elsewhere (the embedded SQLite default)
        # the Python rebuild writes the same rows.
        if connection.vendor == "postgresql":
            _rebuild_sql(**marks)
        else:
            _rebuild_python(**marks)
        bounds = TouchDay.objects.aggregate(first=Min("day"), last=Max("day"))
        return PeopleRefresh.objects.create(
            refreshed_at=refreshed_at,
            **marks,
            first_touch_day=bounds["first"],
            last_touch_day=bounds["last"],
            touch_days=TouchDay.objects.count(),
            people=PersonMilestone.objects.count(),
        )


def people_refresh_latest() -> PeopleRefresh | None:
    return PeopleRefresh.objects.order_by("-id").first()


def _rebuild_sql(
    *, last_touch_id: int, last_contact_id: int, last_sale_event_id: int, last_deal_member_id: int
) -> None:
    quote = connection.ops.quote_name
    touch = quote(Touch._meta.db_table)
    contact = quote(Contact._meta.db_table)
    sale = quote(SaleEvent._meta.db_table)
    member = quote(DealContact._meta.db_table)
    touch_day = quote(TouchDay._meta.db_table)
    touch_day_count = quote(TouchDayCount._meta.db_table)
    milestone = quote(PersonMilestone._meta.db_table)
    created_day_count = quote(CreatedDayCount._meta.db_table)
    # Table names come from the models, values go as parameters (hence the noqa: S608).
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {touch_day} (contact_id, day, previous_day)
            SELECT contact_id, day, lag(day) OVER (PARTITION BY contact_id ORDER BY day)
            FROM (
                SELECT DISTINCT contact_id, (occurred_at AT TIME ZONE %s)::date AS day
                FROM {touch} WHERE id <= %s
            ) AS days
            """,  # noqa: S608
            [settings.TIME_ZONE, last_touch_id],
        )
        cursor.execute(
            f"""
            INSERT INTO {touch_day_count} (day, previous_day, people)
            SELECT day, previous_day, sum(n) OVER (PARTITION BY day ORDER BY previous_day)
            FROM (
                SELECT day, coalesce(previous_day, %s) AS previous_day, count(*) AS n
                FROM {touch_day} GROUP BY 1, 2
            ) AS pairs
            """,  # noqa: S608
            [TouchDayCount.FIRST_EVER],
        )
        cursor.execute(
            f"""
            INSERT INTO {milestone} (contact_id, created_at, first_touch_at, first_won_at)
            SELECT person.id, person.created_at, touches.first_at, wins.first_at
            FROM {contact} AS person
            LEFT JOIN (
                SELECT contact_id, min(occurred_at) AS first_at
                FROM {touch} WHERE id <= %s GROUP BY contact_id
            ) AS touches ON touches.contact_id = person.id
            LEFT JOIN (
                SELECT member.contact_id, min(sale.occurred_at) AS first_at
                FROM {member} AS member JOIN {sale} AS sale ON sale.deal_id = member.deal_id
                WHERE sale.kind = %s AND sale.id <= %s AND member.id <= %s
                GROUP BY member.contact_id
            ) AS wins ON wins.contact_id = person.id
            WHERE person.merged_into_id IS NULL AND person.id <= %s
            """,  # noqa: S608
            [last_touch_id, SaleKind.WON, last_sale_event_id, last_deal_member_id, last_contact_id],
        )
        cursor.execute(
            f"""
            INSERT INTO {created_day_count} (day, people)
            SELECT day, sum(n) OVER (ORDER BY day)
            FROM (
                SELECT (created_at AT TIME ZONE %s)::date AS day, count(*) AS n
                FROM {milestone} GROUP BY 1
            ) AS days
            """,  # noqa: S608
            [settings.TIME_ZONE],
        )
        # Fresh statistics, so the planner takes the indexes for narrow ranges at once.
        # Only an owner may ANALYZE, and the application's role owns no table: a
        # function of the owner's does it (migration 0004).
        cursor.execute("SELECT reports_people_aggregates_analyze()")


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _rebuild_python(
    *, last_touch_id: int, last_contact_id: int, last_sale_event_id: int, last_deal_member_id: int
) -> None:
    """The embedded (SQLite) database has no time zones in SQL: the same rebuild in Python
    (``TouchDayCount`` stays empty: counts there read ``TouchDay``)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    days: dict[int, set[date]] = {}
    first_touch: dict[int, datetime] = {}
    for contact_id, moment in Touch.objects.filter(id__lte=last_touch_id).values_list(
        "contact_id", "occurred_at"
    ):
        days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in first_touch or moment < first_touch[contact_id]:
            first_touch[contact_id] = moment
    rows = []
    for contact_id, person_days in days.items():
        previous = None
        for day in sorted(person_days):
            rows.append(TouchDay(contact_id=contact_id, day=day, previous_day=previous))
            previous = day
    TouchDay.objects.bulk_create(rows, batch_size=1000)
    won_at = dict(
        SaleEvent.objects.filter(kind=SaleKind.WON, id__lte=last_sale_event_id).values_list(
            "deal_id", "occurred_at"
        )
    )
    first_won: dict[int, datetime] = {}
    for contact_id, deal_id in DealContact.objects.filter(
        id__lte=last_deal_member_id, deal_id__in=list(won_at)
    ).values_list("contact_id", "deal_id"):
        moment = won_at[deal_id]
        if contact_id not in first_won or moment < first_won[contact_id]:
            first_won[contact_id] = moment
    people = list(
        Contact.objects.filter(merged_into__isnull=True, id__lte=last_contact_id).values_list(
            "id", "created_at"
        )
    )
    PersonMilestone.objects.bulk_create(
        [
            PersonMilestone(
                contact_id=contact_id,
                created_at=created_at,
                first_touch_at=first_touch.get(contact_id),
                first_won_at=first_won.get(contact_id),
            )
            for contact_id, created_at in people
        ],
        batch_size=1000,
    )
    created_per_day: dict[date, int] = {}
    for _, created_at in people:
        day = _local_day(created_at, zone)
        created_per_day[day] = created_per_day.get(day, 0) + 1
    running = 0
    counts = []
    for day in sorted(created_per_day):
        running += created_per_day[day]
        counts.append(CreatedDayCount(day=day, people=running))
    CreatedDayCount.objects.bulk_create(counts, batch_size=1000)
