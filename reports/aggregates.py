"""The aggregates behind the people counts: rebuilt whole, set-based, by the nightly run.

Counting "people with a touch from s to e" straight from a million touches costs a scan
per request; ``TouchDay`` (one row per person and day with a touch, with the person's
previous such day) answers it from an index, and ``PersonMilestone`` (one row per person:
created, first touch) answers "contacts created by e" and the first stage's time. The
rebuild notes the last touch and contact it includes; ``reports.metrics`` counts the
rows written since, and the merges since, live on top, so the counts are exact at any
moment, not as of last night. (The one gap: a touch whose transaction was still open
while the rebuild read, yet got a lower id than the last one read, waits for the next
rebuild.)
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from contacts.models import Contact, Touch

from .models import PeopleRefresh, PersonMilestone, TouchDay


def people_aggregates_refresh() -> PeopleRefresh:
    """Rebuild ``TouchDay`` and ``PersonMilestone`` from the record, atomically: readers see
    the previous aggregates until this transaction commits."""
    with transaction.atomic():
        # Taken before reading, so a merge committed during the rebuild counts as "since".
        refreshed_at = timezone.now()
        last_touch_id = Touch.objects.aggregate(last=Max("id"))["last"] or 0
        last_contact_id = Contact.objects.aggregate(last=Max("id"))["last"] or 0
        TouchDay.objects.all().delete()
        PersonMilestone.objects.all().delete()
        if connection.vendor == "postgresql":
            _rebuild_sql(last_touch_id, last_contact_id)
        else:
            _rebuild_python(last_touch_id, last_contact_id)
        return PeopleRefresh.objects.create(
            refreshed_at=refreshed_at,
            last_touch_id=last_touch_id,
            last_contact_id=last_contact_id,
            touch_days=TouchDay.objects.count(),
            people=PersonMilestone.objects.count(),
        )


def people_refresh_latest() -> PeopleRefresh | None:
    return PeopleRefresh.objects.order_by("-id").first()


def _rebuild_sql(last_touch_id: int, last_contact_id: int) -> None:
    quote = connection.ops.quote_name
    touch = quote(Touch._meta.db_table)
    contact = quote(Contact._meta.db_table)
    touch_day = quote(TouchDay._meta.db_table)
    milestone = quote(PersonMilestone._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {touch_day} (contact_id, day, previous_day)
            SELECT contact_id, day, lag(day) OVER (PARTITION BY contact_id ORDER BY day)
            FROM (
                SELECT DISTINCT contact_id, (occurred_at AT TIME ZONE %s)::date AS day
                FROM {touch} WHERE id <= %s
            ) AS days
            """,  # noqa: S608 (table names from the models, values as parameters)
            [settings.TIME_ZONE, last_touch_id],
        )
        cursor.execute(
            f"""
            INSERT INTO {milestone} (contact_id, created_at, first_touch_at)
            SELECT person.id, person.created_at, firsts.first_touch_at
            FROM {contact} AS person
            LEFT JOIN (
                SELECT contact_id, min(occurred_at) AS first_touch_at
                FROM {touch} WHERE id <= %s GROUP BY contact_id
            ) AS firsts ON firsts.contact_id = person.id
            WHERE person.merged_into_id IS NULL AND person.id <= %s
            """,  # noqa: S608
            [last_touch_id, last_contact_id],
        )
        # Fresh statistics, so the planner takes the indexes for the narrow ranges at once.
        cursor.execute(f"ANALYZE {touch_day}")
        cursor.execute(f"ANALYZE {milestone}")


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def _rebuild_python(last_touch_id: int, last_contact_id: int) -> None:
    """The embedded (SQLite) database has no time zones in SQL: the same rebuild in Python."""
    zone = ZoneInfo(settings.TIME_ZONE)
    days: dict[int, set[date]] = {}
    firsts: dict[int, datetime] = {}
    for contact_id, moment in Touch.objects.filter(id__lte=last_touch_id).values_list(
        "contact_id", "occurred_at"
    ):
        days.setdefault(contact_id, set()).add(_local_day(moment, zone))
        if contact_id not in firsts or moment < firsts[contact_id]:
            firsts[contact_id] = moment
    rows = []
    for contact_id, person_days in days.items():
        previous = None
        for day in sorted(person_days):
            rows.append(TouchDay(contact_id=contact_id, day=day, previous_day=previous))
            previous = day
    TouchDay.objects.bulk_create(rows, batch_size=1000)
    PersonMilestone.objects.bulk_create(
        [
            PersonMilestone(
                contact_id=contact_id,
                created_at=created_at,
                first_touch_at=firsts.get(contact_id),
            )
            for contact_id, created_at in Contact.objects.filter(
                merged_into__isnull=True, id__lte=last_contact_id
            ).values_list("id", "created_at")
        ],
        batch_size=1000,
    )
