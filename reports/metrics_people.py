"""Distinct people at each stage of a range (``reports.metrics`` has the definitions).

The counts come from the aggregates in ``reports.aggregates`` with whatever was written or
merged since their rebuild counted live on top (``Changes``), so every number is exact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import (
    Exists,
    OuterRef,
    Q,
    QuerySet,
)

from contacts.models import Contact, Touch
from handoff.models import (
    DealContact,
    Handoff,
    HandoffStatus,
    Qualification,
    SaleEvent,
    SaleKind,
)

from .aggregates import people_refresh_latest
from .counting import count_each
from .models import (
    CreatedDayCount,
    CustomerDay,
    CustomerDayCount,
    PeopleRefresh,
    PersonMilestone,
    TouchDay,
    TouchDayCount,
)
from .per_state import state_read
from .periods import range_moments
from .report_cache import report_cached
from .since_state import since_state
from .snapshot import consistent_read, snapshot_remember


@dataclass(frozen=True)
class People:
    contacts: int
    engaged: int
    qualified: int
    handed_off: int
    accepted: int
    customers: int


@dataclass(frozen=True)
class Changes:
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


def changes_since_refresh() -> Changes:
    """What the aggregates' latest state does not know yet (once per reader's snapshot)."""
    return snapshot_remember("changes since refresh", _changes_since_refresh)


def _changes_since_refresh() -> Changes:
    refresh = people_refresh_latest()
    if refresh is None:
        # Never rebuilt: every row is "new" and counted live (correct, only slower).
        return Changes(None, frozenset(), frozenset())
    # Read with the state in a snapshot on PostgreSQL (``people_refresh_latest``).
    merges = getattr(refresh, "merges_since", None)
    if merges is None:
        merges = list(
            Contact.objects.filter(
                merged_into__isnull=False, merged_at__gte=refresh.refreshed_at
            ).values_list("id", "merged_into_id")
        )
    return Changes(
        refresh=refresh,
        merged=frozenset(merged for merged, _ in merges),
        survivors=frozenset(survivor for _, survivor in merges if survivor is not None),
    )


def members_changed_since(refresh: PeopleRefresh) -> set[int]:
    """People added to a deal, or in a deal won, since the state's marks (once per reader's
    snapshot)."""
    return set(
        snapshot_remember(
            f"members changed since {refresh.pk}", lambda: _members_changed_since(refresh)
        )
    )


def _members_changed_since(refresh: PeopleRefresh) -> set[int]:
    """A union of two reads, each on its own index (an OR of the two read every deal
    member), in one query."""
    recent_wins = SaleEvent.objects.filter(kind=SaleKind.WON, id__gt=refresh.last_sale_event_id)
    added = DealContact.objects.filter(id__gt=refresh.last_deal_member_id)
    won = DealContact.objects.filter(deal_id__in=recent_wins.values("deal_id"))
    return set(
        added.values_list("contact_id", flat=True)
        .order_by()
        .union(won.values_list("contact_id", flat=True).order_by())
    )


def _contacts_created_by(end: date, changes: Changes) -> tuple[int, QuerySet[Any], QuerySet[Any]]:
    """Persons (contacts not merged into another) created on or before ``end``: as the
    aggregates' state counted them, less the count of the first queryset, plus the count
    of the second (the caller counts them with its other counts)."""
    _, high = range_moments(end, end)
    known = 0
    merged_since: QuerySet[Any] = PersonMilestone.objects.none()
    if changes.refresh is not None:
        known = state_read(
            changes.refresh,
            ("created by", end),
            lambda: (
                (
                    CreatedDayCount.objects.filter(day__lte=end)
                    .order_by("-day")
                    .values_list("people", flat=True)
                    .first()
                )
                or 0
            ),
        )
        merged_since = PersonMilestone.objects.filter(
            contact_id__in=changes.merged, created_at__lt=high
        )
    newer = Contact.objects.filter(
        id__gt=changes.last_contact_id, merged_into__isnull=True, created_at__lt=high
    )
    return known, merged_since, newer


DayModel = type[TouchDay] | type[CustomerDay]


def _first_days_in(model: DayModel, start: date, end: date) -> QuerySet[Any]:
    """Each person's first day within [start, end] (of ``TouchDay`` or ``CustomerDay``): one
    row per person with such a day in the range."""
    return model.objects.filter(day__gte=start, day__lte=end).filter(
        Q(previous_day__lt=start) | Q(previous_day__isnull=True)
    )


def _touch_days_first_in(start: date, end: date) -> QuerySet[TouchDay]:
    """Each person's first touch day within [start, end]: one row per person touched."""
    return _first_days_in(TouchDay, start, end)


def _days_counted(
    counts: type[TouchDayCount] | type[CustomerDayCount],
    first: date,
    last: date,
    start: date,
    state: PeopleRefresh,
) -> int:
    """The people of a day table with a day in [first, last] and none in [start, first)
    (PostgreSQL): the sum over those days of the day's cumulative count up to the greatest
    previous day before ``start``, one index probe per day; once per process for the
    aggregates' ``state`` (``reports.per_state``)."""
    return state_read(
        state,
        ("days counted", counts._meta.db_table, first, last, start),
        lambda: _days_counted_read(counts, first, last, start),
    )


def _days_counted_read(
    counts: type[TouchDayCount] | type[CustomerDayCount], first: date, last: date, start: date
) -> int:
    table = connection.ops.quote_name(counts._meta.db_table)
    with connection.cursor() as cursor:
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
    return int(row[0] if row else 0)


def _touched_known(start: date, end: date, changes: Changes) -> int:
    """People touched in [start, end] as the rebuild knew them, less the people changed since."""
    refresh = changes.refresh
    if refresh is None:
        return 0
    changed = _touch_days_first_in(start, end).filter(contact_id__in=changes.changed).count()
    # PostgreSQL: a probe per day over TouchDayCount, which bench/report_latency.py's
    # people counts over a year of a million touches need; elsewhere (the embedded
    # SQLite default) counting the TouchDay rows gives the same number.
    if connection.vendor != "postgresql":
        return _touch_days_first_in(start, end).count() - changed
    if refresh.first_touch_day is None or refresh.last_touch_day is None:
        return 0
    first, last = max(start, refresh.first_touch_day), min(end, refresh.last_touch_day)
    if first > last:
        return 0
    return _days_counted(TouchDayCount, first, last, start, refresh) - changed


def _customers(start: date, end: date, changes: Changes) -> int:
    """Distinct people in deals won in the range: from ``CustomerDay`` (on PostgreSQL its
    counts, a probe per day), with the people whose deals or wins it may not know yet
    (members added or deals won since, merged since) counted live."""
    low, high = range_moments(start, end)
    won = SaleEvent.objects.filter(kind=SaleKind.WON, occurred_at__gte=low, occurred_at__lt=high)
    members = DealContact.objects.filter(deal_id__in=won.values("deal_id"))
    refresh = changes.refresh
    if refresh is None:
        return _distinct_contacts(members)
    stale = set(changes.changed) | members_changed_since(refresh)
    stale_known = _first_days_in(CustomerDay, start, end).filter(contact_id__in=stale).count()
    if connection.vendor == "postgresql":
        known = _days_counted(CustomerDayCount, start, end, start, refresh)
    else:
        known = _first_days_in(CustomerDay, start, end).count()
    live = _distinct_contacts(members.filter(contact_id__in=stale)) if stale else 0
    return known - stale_known + live


def _engaged(start: date, end: date, changes: Changes) -> int:
    """Distinct persons with a touch in the range.

    A person touched in [start, end] has exactly one touch day there whose previous touch
    day is before ``start`` (or who has none), so counting those ``TouchDay`` rows counts
    each person once (on PostgreSQL from ``TouchDayCount``, a probe per day). Touches
    written since the rebuild and the people merged since are then counted live: the
    survivors of merges whole, and of the others only those with no touch day in the
    range yet (counted in the database: while events stream in, the people touched
    since the state are thousands, and nearly all of them are counted already).
    """
    low, high = range_moments(start, end)
    known = _touched_known(start, end, changes)
    in_range = Touch.objects.filter(occurred_at__gte=low, occurred_at__lt=high)
    survivors = set(changes.survivors) - changes.merged
    if survivors:
        survivors = set(
            in_range.filter(contact_id__in=survivors)
            .values_list("contact_id", flat=True)
            .distinct()
            .order_by()
        )
    newcomers = _touched_since_uncounted(start, end, changes) - changes.changed
    return known + len(survivors) + len(newcomers)


def _touched_since_uncounted(start: date, end: date, changes: Changes) -> set[int]:
    """The people with a touch in the range written since the state who have no touch day
    in the range in the aggregate (read in parts per process: ``reports.since_state``)."""
    low, high = range_moments(start, end)

    def read(after: int, up_to: int, also: list[int]) -> set[int]:
        return _uncounted_read(start, end, low, high, after, up_to, also)

    def recheck(persons: list[int], after: int, up_to: int) -> set[int]:
        return _uncounted_recheck(start, end, low, high, persons, after, up_to)

    return since_state(
        ("uncounted", start, end),
        refresh=changes.refresh,
        read=read,
        # PostgreSQL, where events stream in: a new state carries the last one's answer
        # over (``reports.since_state``).
        recheck=recheck if connection.vendor == "postgresql" else None,
    )


def _uncounted_recheck(
    start: date,
    end: date,
    low: datetime,
    high: datetime,
    persons: list[int],
    after: int,
    up_to: int,
) -> set[int]:
    """Of ``persons``, those with a touch in the range with an id in (after, up_to] and no
    touch day in [start, end] in the aggregate (PostgreSQL): two probes per person."""
    touches = connection.ops.quote_name(Touch._meta.db_table)
    days = connection.ops.quote_name(TouchDay._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT person FROM unnest(%s::bigint[]) AS person
            WHERE EXISTS (
                SELECT 1 FROM {touches} AS touch
                WHERE touch.contact_id = person AND touch.occurred_at >= %s
                AND touch.occurred_at < %s AND touch.id > %s AND touch.id <= %s
            )
            AND NOT EXISTS (
                SELECT 1 FROM {days} AS counted
                WHERE counted.contact_id = person AND counted.day >= %s AND counted.day <= %s
            )
            """,  # noqa: S608 (the table names from the models, values as parameters)
            [persons, low, high, after, up_to, start, end],
        )
        return {row[0] for row in cursor.fetchall()}


def _uncounted_read(
    start: date,
    end: date,
    low: datetime,
    high: datetime,
    after: int,
    up_to: int,
    also: list[int],
) -> set[int]:
    """The people of the touches in the range with an id in (after, up_to] or in ``also``
    who have no touch day in [start, end] in the aggregate: each person touched is probed
    once (a busy person has several touches since), not each touch."""
    if connection.vendor != "postgresql":
        counted_already = TouchDay.objects.filter(
            contact_id=OuterRef("contact_id"), day__gte=start, day__lte=end
        )
        return set(
            Touch.objects.filter(occurred_at__gte=low, occurred_at__lt=high)
            .filter(Q(id__gt=after, id__lte=up_to) | Q(id__in=also))
            .exclude(Exists(counted_already))
            .values_list("contact_id", flat=True)
            .distinct()
            .order_by()
        )
    # PostgreSQL, which bench/report_latency.py's events streaming into ten million
    # touches needs: the people first, then the probes (the ORM's form of it joined
    # every contact, or probed once per touch).
    touches = connection.ops.quote_name(Touch._meta.db_table)
    days = connection.ops.quote_name(TouchDay._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT recent.contact_id FROM (
                SELECT DISTINCT contact_id FROM {touches}
                WHERE ((id > %s AND id <= %s) OR id = ANY(%s::bigint[]))
                AND occurred_at >= %s AND occurred_at < %s
            ) AS recent
            WHERE NOT EXISTS (
                SELECT 1 FROM {days} AS counted
                WHERE counted.contact_id = recent.contact_id
                AND counted.day >= %s AND counted.day <= %s
            )
            """,  # noqa: S608 (the table names from the models, values as parameters)
            [after, up_to, also, low, high, start, end],
        )
        return {row[0] for row in cursor.fetchall()}


def handoffs_visible(known: tuple[str, ...] | None) -> QuerySet[Handoff]:
    """Every handoff, or, for a reader who may not know of them all, those whose say-so is
    in ``known`` (``handoff.selectors.handoff_audiences_known_to``): a handoff opened on a
    say-so outside a reader's audience counts for that reader nowhere, as if it were not."""
    if known is None:
        return Handoff.objects.all()
    return Handoff.objects.filter(say_so_audience__in=known)


@report_cached
def people(start: date, end: date, known: tuple[str, ...] | None = None) -> People:
    """Distinct people at each stage in the range (see the module's definitions)."""
    with consistent_read():
        return _people(start, end, known)


def _people(start: date, end: date, known: tuple[str, ...] | None) -> People:
    low, high = range_moments(start, end)
    changes = changes_since_refresh()
    created_known, created_less, created_more = _contacts_created_by(end, changes)
    # The stages read live, and the contacts' corrections, counted in one query.
    qualified, handed_off, accepted, less, more = count_each(
        _contacts_of(
            Qualification.objects.filter(qualified=True, occurred_at__gte=low, occurred_at__lt=high)
        ),
        _contacts_of(handoffs_visible(known).filter(occurred_at__gte=low, occurred_at__lt=high)),
        _contacts_of(
            handoffs_visible(known).filter(
                status=HandoffStatus.ACCEPTED, decided_at__gte=low, decided_at__lt=high
            )
        ),
        created_less,
        created_more,
    )
    return People(
        contacts=created_known - less + more,
        engaged=_engaged(start, end, changes),
        qualified=qualified,
        handed_off=handed_off,
        accepted=accepted,
        customers=_customers(start, end, changes),
    )


def _contacts_of(rows: QuerySet[Any]) -> QuerySet[Any]:
    # No ordering: a model's default ordering would join the DISTINCT and count rows.
    return rows.values("contact_id").order_by().distinct()


def _distinct_contacts(rows: QuerySet[Any]) -> int:
    return _contacts_of(rows).count()
